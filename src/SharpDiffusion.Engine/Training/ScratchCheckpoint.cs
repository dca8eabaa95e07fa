using System.Text.Json.Nodes;
using SharpDiffusion.Engine.Diagnostics;
using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Text.Tokenization;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// The starting point of a model trained from scratch: from a json model config (the tiny_*.config.json layout: the
/// LDM tree under "ldm_config" and the CLIP text tower's sizes under "text_encoder") it writes
/// <c>NAME.safetensors</c> with fresh weights in the SD1 single-file layout, <c>NAME.yaml</c> (the config, which
/// A1111 and this engine read beside a checkpoint) and <c>NAME.tokenizer/</c> (a BPE vocabulary fitted to the data
/// set's captions). Every later stage loads that trio like any other checkpoint.
/// </summary>
public static class ScratchCheckpoint
{
    /// <summary>What the text encoder section must give (the Hugging Face CLIPTextConfig names).</summary>
    private static readonly string[] TextKeys = ["hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"];

    /// <param name="captions">The corpus the vocabulary is fitted to (every caption line of the data set).</param>
    /// <returns>The architecture written (its text vocabulary is the fitted one's size).</returns>
    public static RandomModelArchitecture Create(string configPath, IEnumerable<string> captions, string outputPath, int vocabularySize, long seed)
    {
        var text = File.ReadAllText(configPath);
        var tree = LdmConfigFile.Load(configPath);
        var unet = UNetConfig.FromLdmConfig(tree);
        var vae = VaeConfig.FromLdmConfig(tree);
        var values = TextKeys.Select(k => ConfigTree.Integer(tree.Find("text_encoder." + k))
            ?? throw new InvalidModelFileException(configPath, $"no text_encoder.{k}: a model from scratch needs the text encoder's sizes")).ToArray();
        int positions = (int)(ConfigTree.Integer(tree.Find("text_encoder.max_position_embeddings")) ?? 77);
        if (unet.ContextDim != values[0])
            throw new InvalidModelFileException(configPath, $"the U-Net's context_dim {unet.ContextDim} differs from the text encoder's hidden_size {values[0]}");
        if (unet.InChannels != vae.EmbedDim)
            throw new InvalidModelFileException(configPath, $"the U-Net takes {unet.InChannels} channels and the VAE makes {vae.EmbedDim}");

        var vocabulary = BytePairVocabularyFitter.Fit(captions, vocabularySize);
        var arch = new RandomModelArchitecture(Path.GetFileNameWithoutExtension(outputPath), unet, vae,
            TextVocab: vocabulary.Encoder.Count, TextWidth: (int)values[0], TextLayers: (int)values[1], TextHeads: (int)values[2],
            TextMlpWidth: (int)values[3], TextPositions: positions);

        BytePairVocabularyFitter.Write(vocabulary, TokenizerLocator.BesideCheckpoint(outputPath));
        WriteConfig(ConfigBeside(outputPath), text);
        RandomModel.Write(outputPath, arch, TensorDType.F32, seed);
        return arch;
    }

    /// <summary>The A1111 config path of a checkpoint: NAME.yaml beside NAME.safetensors.</summary>
    public static string ConfigBeside(string checkpointPath) => Path.ChangeExtension(Path.GetFullPath(checkpointPath), ".yaml");

    /// <summary>
    /// Sets <c>model.params.scale_factor</c> of a json config (LDM's <c>scale_by_std</c>: 1 / std of the latents, measured
    /// once the autoencoder is trained) and writes it to <paramref name="outputPath"/>.
    /// </summary>
    public static void WriteScaleFactor(string configPath, string outputPath, double scaleFactor)
    {
        var root = JsonNode.Parse(File.ReadAllText(configPath))
            ?? throw new InvalidModelFileException(configPath, "empty config");
        var model = root["model"] ?? root["ldm_config"]?["model"]
            ?? throw new InvalidModelFileException(configPath, "no model section (json LDM config expected)");
        var parameters = model["params"] ?? throw new InvalidModelFileException(configPath, "no model.params section");
        parameters["scale_factor"] = Math.Round(scaleFactor, 6);
        WriteConfig(outputPath, root.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Copies the config and the tokenizer of a checkpoint beside another (a later stage's output).</summary>
    public static void CopyCompanions(string fromCheckpoint, string toCheckpoint)
    {
        if (Path.GetFullPath(fromCheckpoint) == Path.GetFullPath(toCheckpoint)) return;
        var config = LdmConfigFile.FindBeside(fromCheckpoint);
        if (config != null) WriteConfig(ConfigBeside(toCheckpoint), File.ReadAllText(config));
        var tokenizer = TokenizerLocator.BesideCheckpoint(fromCheckpoint);
        if (Directory.Exists(tokenizer))
        {
            var target = TokenizerLocator.BesideCheckpoint(toCheckpoint);
            Directory.CreateDirectory(target);
            foreach (var file in Directory.GetFiles(tokenizer)) File.Copy(file, Path.Combine(target, Path.GetFileName(file)), overwrite: true);
        }
    }

    private static void WriteConfig(string path, string text)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true);
    }
}
