namespace SharpDiffusion.Workshop;

/// <summary>
/// Makes sure a file output never replaces one of the inputs (same path, a link to the same file, or a file inside an
/// input folder), is not a folder, and goes into a folder that exists: outputs never create folders. Every command
/// that writes a file calls it before any work (merge, convert, bake, extract-lora, resize-lora, generate, dev).
/// </summary>
public static class OutputGuard
{
    /// <exception cref="WorkshopException">The output would replace an input, is a folder, or its folder does not exist.</exception>
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
