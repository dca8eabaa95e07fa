namespace SharpDiffusion.Workshop;

/// <summary>
/// A folder written as a whole: everything goes into <c>.NAME.tmp-RANDOM</c> beside the target, which takes the
/// target's name only when complete (a rename in the same parent folder); on failure the temporary folder is deleted.
/// An existing target must be an empty folder (it is replaced); a file or a folder with anything in it is refused.
/// </summary>
internal static class FolderOutput
{
    /// <summary>Refuses a target that is a file, a non-empty folder, inside an input, or in a missing parent folder.</summary>
    public static string Check(string target, IEnumerable<string> inputs)
    {
        string full = Path.GetFullPath(target).TrimEnd(Path.DirectorySeparatorChar);
        if (File.Exists(full)) throw new WorkshopException($"{target}: is a file; a diffusers folder needs a new or empty folder");
        if (Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any())
            throw new WorkshopException($"{target}: the folder is not empty; give a new or empty folder");
        foreach (var input in inputs)
        {
            string inFull = Path.GetFullPath(input).TrimEnd(Path.DirectorySeparatorChar);
            if (string.Equals(full, inFull, StringComparison.Ordinal)
                || full.StartsWith(inFull + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                throw new WorkshopException($"{target}: the output would be written into the input {input}; choose another folder");
        }
        string? parent = Path.GetDirectoryName(full);
        if (parent == null || !Directory.Exists(parent)) throw new WorkshopException($"{target}: the folder {parent} does not exist");
        return full;
    }

    /// <summary>Runs <paramref name="write"/> on a fresh temporary folder beside <paramref name="target"/>, then renames it to the target.</summary>
    public static void Write(string target, Action<string> write)
    {
        string full = Path.GetFullPath(target).TrimEnd(Path.DirectorySeparatorChar);
        string parent = Path.GetDirectoryName(full)!;
        string temp = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid().ToString("N")[..16]}");
        Directory.CreateDirectory(temp);
        try
        {
            write(temp);
            // Directory.Move does not replace: an empty target folder (checked before the work) is removed first.
            if (Directory.Exists(full)) Directory.Delete(full, recursive: false);
            Directory.Move(temp, full);
        }
        catch
        {
            try
            {
                if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            }
            catch (IOException)
            {
                // The original error matters more than a leftover temporary folder.
            }
            throw;
        }
    }
}
