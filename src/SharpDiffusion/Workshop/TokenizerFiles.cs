using System.Text.Json.Nodes;

namespace SharpDiffusion.Workshop;

/// <summary>
/// The CLIP tokenizer files of a diffusers folder, taken from beside a single-file checkpoint (never downloaded): a
/// <c>tokenizer/</c> folder with <c>vocab.json</c> + <c>merges.txt</c> is copied whole; a bare <c>vocab.json</c> +
/// <c>merges.txt</c> pair is copied with the SD1 tokenizer_config.json and special_tokens_map.json added.
/// </summary>
internal static class TokenizerFiles
{
    public const string Folder = "tokenizer";

    /// <summary>The folder holding the vocabulary beside <paramref name="checkpoint"/>, or null when there is none.</summary>
    public static string? Find(string checkpoint)
    {
        string? dir = Path.GetDirectoryName(Path.GetFullPath(checkpoint));
        if (dir == null) return null;
        foreach (var candidate in new[] { Path.Combine(dir, Folder), dir })
            if (File.Exists(Path.Combine(candidate, "vocab.json")) && File.Exists(Path.Combine(candidate, "merges.txt"))) return candidate;
        return null;
    }

    /// <summary>Writes <c>tokenizer/</c> under <paramref name="pipelineFolder"/> from <paramref name="source"/> (see <see cref="Find"/>).</summary>
    public static void Write(string source, string pipelineFolder)
    {
        string target = Directory.CreateDirectory(Path.Combine(pipelineFolder, Folder)).FullName;
        bool wholeFolder = string.Equals(Path.GetFileName(source), Folder, StringComparison.Ordinal);
        var files = wholeFolder ? Directory.EnumerateFiles(source) : [Path.Combine(source, "vocab.json"), Path.Combine(source, "merges.txt")];
        foreach (var file in files) File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
        if (wholeFolder) return;
        const string EndOfText = "<|endoftext|>";
        JsonFiles.Write(Path.Combine(target, "tokenizer_config.json"), new JsonObject
        {
            ["bos_token"] = "<|startoftext|>",
            ["do_lower_case"] = true,
            ["eos_token"] = EndOfText,
            ["errors"] = "replace",
            ["model_max_length"] = 77,
            ["pad_token"] = EndOfText,
            ["tokenizer_class"] = "CLIPTokenizer",
            ["unk_token"] = EndOfText,
        });
        JsonFiles.Write(Path.Combine(target, "special_tokens_map.json"), new JsonObject
        {
            ["bos_token"] = "<|startoftext|>",
            ["eos_token"] = EndOfText,
            ["pad_token"] = EndOfText,
            ["unk_token"] = EndOfText,
        });
    }
}
