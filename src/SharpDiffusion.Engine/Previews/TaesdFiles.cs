using SharpDiffusion.Architectures;

namespace SharpDiffusion.Engine.Previews;

/// <summary>Where A1111 keeps the TAESD files: <c>models/VAE-approx/taesd_decoder.pth</c> (SD1/SD2), <c>taesdxl_decoder.pth</c> (SDXL), or <c>.safetensors</c> copies.</summary>
public static class TaesdFiles
{
    /// <summary>
    /// The TAESD decoder file for <paramref name="architecture"/> in <paramref name="modelsDir"/>'s <c>VAE-approx/</c>;
    /// an <see cref="ArgumentException"/> naming <paramref name="option"/> when the family has none or the file is missing.
    /// </summary>
    public static string Decoder(string? modelsDir, ModelArchitecture architecture, string option)
    {
        string stem = (architecture.TaesdName ?? throw new ArgumentException($"{option}: no TAESD decoder exists for {architecture.DisplayName}")) + "_decoder";
        var folder = modelsDir is null ? null : Path.Combine(modelsDir, "VAE-approx");
        return (folder is null ? null : new[] { ".pth", ".safetensors" }.Select(e => Path.Combine(folder, stem + e)).FirstOrDefault(File.Exists))
            ?? throw new ArgumentException($"{option} needs {stem}.pth or .safetensors in --models-dir's VAE-approx/ folder");
    }
}
