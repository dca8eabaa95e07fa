using SharpDiffusion.Tests.Diffusers;
using SharpDiffusion.Tests.Fixtures;

namespace SharpDiffusion.Tests.Cli;

/// <summary>
/// A folder as users have them: a kohya LoRA, a diffusers VAE folder, a file that is not a model despite its
/// extension (a saved web page), a nested checkpoint-like file, and files the scan must skip.
/// </summary>
internal static class ModelFolderFixture
{
    public const string LoraName = "add_detail.safetensors";
    public const string BrokenName = "broken.safetensors";

    public static void Create(string root, bool withBroken = true)
    {
        Directory.CreateDirectory(root);
        SparseSafetensors.Create(Path.Combine(root, LoraName), ReferenceInventory.Load("sd15_kohya_lora_rank8.tsv"),
            new Dictionary<string, string> { ["ss_network_dim"] = "8", ["ss_network_alpha"] = "4", ["ss_tag_frequency"] = new string('x', 5000) });
        Sd15DiffusersFolder.CreateComponent(Path.Combine(root, "vae-ft-mse"), Sd15DiffusersFolder.VaeConfig, "diffusion_pytorch_model.safetensors", Sd15DiffusersFolder.Vae);
        Directory.CreateDirectory(Path.Combine(root, "nested"));
        SparseSafetensors.Create(Path.Combine(root, "nested", "tiny.sft"), [("w", "F16", [4, 4])]);
        File.WriteAllText(Path.Combine(root, "README.md"), "not a model");
        File.WriteAllText(Path.Combine(root, "preview.png"), "not scanned");
        if (withBroken) File.WriteAllText(Path.Combine(root, BrokenName), "<!DOCTYPE html><html><body>Too many requests</body></html>");
    }
}
