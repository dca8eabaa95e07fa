namespace SharpDiffusion.Workshop;

/// <summary>Makes sure an output never replaces one of the inputs (same path, or a link to the same file).</summary>
internal static class OutputGuard
{
    public static void Check(string output, IEnumerable<string?> inputs)
    {
        string outFull = Resolve(output);
        if (Directory.Exists(outFull)) throw new WorkshopException($"{output}: is a folder; give a .safetensors file name");
        foreach (var input in inputs)
        {
            if (input == null) continue;
            string inFull = Resolve(input);
            if (string.Equals(outFull, inFull, StringComparison.Ordinal)
                || (Directory.Exists(inFull) && outFull.StartsWith(inFull.TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar, StringComparison.Ordinal)))
                throw new WorkshopException($"{output}: the output would overwrite the input {input}; choose another file name");
        }
        string? folder = Path.GetDirectoryName(outFull);
        if (folder != null && !Directory.Exists(folder)) throw new WorkshopException($"{output}: the folder {folder} does not exist");
    }

    /// <summary>The full path with symbolic links followed, so a link to an input counts as that input.</summary>
    private static string Resolve(string path)
    {
        string full = Path.GetFullPath(path);
        try
        {
            var info = new FileInfo(full);
            if (info.Exists && info.LinkTarget != null && info.ResolveLinkTarget(returnFinalTarget: true) is { } target)
                return Path.GetFullPath(target.FullName);
        }
        catch (IOException) { }
        return full;
    }
}
