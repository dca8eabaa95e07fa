namespace SharpDiffusion.Engine.Upscaling;

/// <summary>One upscaler file of a models folder.</summary>
public sealed record UpscalerFile(string Name, string Path);

/// <summary>
/// Upscaler files of an A1111 models folder: <c>ESRGAN/</c> and <c>RealESRGAN/</c> (A1111's folders) and
/// <c>upscalers/</c>, each searched recursively for .pth, .pt, .safetensors; the name is the file name without extension.
/// </summary>
public static class UpscalerFolder
{
    public static readonly string[] SubFolders = ["ESRGAN", "RealESRGAN", "upscalers"];
    private static readonly string[] Extensions = [".pth", ".pt", ".safetensors"];

    public static IReadOnlyList<UpscalerFile> List(string modelsDir)
    {
        var files = new List<UpscalerFile>();
        foreach (var sub in SubFolders)
        {
            string folder = System.IO.Path.Combine(modelsDir, sub);
            if (!Directory.Exists(folder)) continue;
            foreach (var path in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                if (Extensions.Contains(System.IO.Path.GetExtension(path), StringComparer.OrdinalIgnoreCase))
                    files.Add(new UpscalerFile(System.IO.Path.GetFileNameWithoutExtension(path), path));
            }
        }
        return files;
    }

    /// <summary>The first file whose name (or file name) equals <paramref name="name"/>, case-insensitively; null if none.</summary>
    public static string? Find(string modelsDir, string name) =>
        List(modelsDir).FirstOrDefault(f => string.Equals(f.Name, name, StringComparison.OrdinalIgnoreCase)
            || string.Equals(System.IO.Path.GetFileName(f.Path), name, StringComparison.OrdinalIgnoreCase))?.Path;
}
