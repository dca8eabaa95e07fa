using SharpDiffusion.Workshop;

namespace SharpDiffusion.Cli.Output;

/// <summary>
/// Where <c>generate</c> writes: <c>--out NAME.png</c> is a file (<c>NAME-1.png</c>, <c>NAME-2.png</c>... for a batch)
/// in a folder that must exist; any other <c>--out</c> (default <c>outputs</c>) is a folder of A1111-style
/// <c>NNNNN-SEED.png</c> files, created when missing (only itself: its parent must exist). A name with another
/// extension (<c>x.jpg</c>) is refused rather than taken for a folder.
/// </summary>
internal static class GenerateOutputs
{
    public const string DefaultFolder = "outputs";

    /// <summary>
    /// Refuses, before any work, outputs that would replace an input (the checkpoint, init image, VAE, config, source
    /// PNG), a non-PNG file name, or a folder that does not exist.
    /// </summary>
    /// <exception cref="ArgumentException">--out names a file that is not a PNG, or a folder whose parent is missing.</exception>
    /// <exception cref="WorkshopException">An output would replace an input, or its folder does not exist.</exception>
    public static void Check(string? outPath, string? latentsPath, int batch, IEnumerable<string?> inputs)
    {
        var inputList = inputs.ToList();
        outPath ??= DefaultFolder;
        if (IsPngFile(outPath))
        {
            for (int i = 0; i < Math.Max(1, batch); i++) OutputGuard.Check(PngFile(outPath, i, batch), inputList);
        }
        else if (Path.HasExtension(outPath.TrimEnd(Path.DirectorySeparatorChar)) && !Directory.Exists(outPath))
        {
            throw new ArgumentException($"--out {outPath}: images are written as PNG; give a .png file name or a folder");
        }
        else
        {
            string full = Path.GetFullPath(outPath).TrimEnd(Path.DirectorySeparatorChar);
            if (File.Exists(full)) throw new ArgumentException($"--out {outPath}: is a file; give a .png file name or a folder");
            string? parent = Path.GetDirectoryName(full);
            if (!Directory.Exists(full) && parent != null && !Directory.Exists(parent))
                throw new ArgumentException($"--out {outPath}: the folder {parent} does not exist");
        }
        if (latentsPath != null) OutputGuard.Check(latentsPath, inputList);
    }

    public static bool IsPngFile(string outPath) => outPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase);

    /// <summary>The file of image <paramref name="index"/> of <paramref name="count"/> for a <c>.png</c> --out.</summary>
    public static string PngFile(string outPath, int index, int count) => count <= 1
        ? outPath
        : Path.Combine(Path.GetDirectoryName(Path.GetFullPath(outPath))!, $"{Path.GetFileNameWithoutExtension(outPath)}-{index + 1}.png");
}
