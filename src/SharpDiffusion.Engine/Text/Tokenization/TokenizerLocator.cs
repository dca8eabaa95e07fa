using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.Text.Tokenization;

/// <summary>
/// Finds the CLIP vocabulary without any network access, in this order: an explicit path (file or folder), a
/// <c>NAME.tokenizer/</c> folder beside a single-file checkpoint <c>NAME.safetensors</c> (a model with its own fitted
/// vocabulary, as our trainer writes it; the A1111 <c>NAME.yaml</c> convention applied to the tokenizer), the
/// model folder's <c>tokenizer/</c> (diffusers), the Hugging Face cache of openai/clip-vit-large-patch14, the
/// data folder (<c>$SHARPDIFFUSION_DATA/clip/</c> or <c>~/.local/share/sharpdiffusion/clip/</c>), and last the
/// vocabulary built into this assembly (openai/CLIP's, MIT), which every SD1/SD2/SDXL text encoder uses.
/// </summary>
public sealed class TokenizerLocator
{
    public const string OpenAiFileName = "bpe_simple_vocab_16e6.txt.gz";

    /// <summary>Token count of the built-in vocabulary (= rows of every SD1/SD2/SDXL token embedding).</summary>
    public const int BuiltInVocabularySize = 49408;

    /// <summary>How the built-in vocabulary is named in messages and in <see cref="BytePairVocabulary.Source"/>.</summary>
    public const string BuiltInSource = "built-in openai/CLIP vocabulary";

    private const string HubModelFolder = "models--openai--clip-vit-large-patch14";
    private const string BuiltInResource = "SharpDiffusion.Engine.clip." + OpenAiFileName;

    // Immutable once built; parsing the 48,894 merges is worth doing once per process.
    private static readonly Lazy<BytePairVocabulary> BuiltInVocabulary = new(LoadBuiltIn);

    private readonly Func<string, string?> _environment;
    private readonly string _home;

    /// <param name="environment">Environment lookup (tests pass their own); defaults to the process environment.</param>
    /// <param name="homeDirectory">The user's home folder; defaults to the profile folder.</param>
    public TokenizerLocator(Func<string, string?>? environment = null, string? homeDirectory = null)
    {
        _environment = environment ?? Environment.GetEnvironmentVariable;
        _home = homeDirectory ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
    }

    /// <summary>The built-in vocabulary (openai/CLIP's <c>bpe_simple_vocab_16e6.txt.gz</c>, embedded in this assembly).</summary>
    public static BytePairVocabulary BuiltIn => BuiltInVocabulary.Value;

    /// <summary>The vocabulary location on disk (a folder with vocab.json + merges.txt or the openai .gz, or such a file).</summary>
    /// <exception cref="FileNotFoundException">Nothing on disk; the message lists every place looked at.</exception>
    public string Locate(string? explicitPath = null, string? modelFolder = null)
    {
        var looked = new List<string>();
        return TryLocate(explicitPath, modelFolder, looked) ?? throw new FileNotFoundException(NotFoundMessage(looked));
    }

    /// <summary>
    /// Locates and loads the vocabulary, falling back to the built-in one when nothing is on disk. With
    /// <paramref name="modelVocabularySize"/> (the rows of the model's token embedding) a vocabulary with ids the model
    /// cannot embed is refused, and the built-in one is used only for a model with CLIP's 49,408 tokens: a model with
    /// its own vocabulary never gets CLIP's silently.
    /// </summary>
    /// <exception cref="FileNotFoundException">An explicit path holds no vocabulary, or nothing fits the model.</exception>
    /// <exception cref="InvalidModelFileException">The vocabulary found has ids beyond the model's token embedding.</exception>
    public ClipTokenizer LoadTokenizer(string? explicitPath = null, string? modelFolder = null, bool htmlUnescape = true, int? modelVocabularySize = null,
        string? modelFile = null)
    {
        var looked = new List<string>();
        var path = TryLocate(explicitPath, modelFolder, looked, modelFile);
        BytePairVocabulary vocabulary;
        if (path != null) vocabulary = BytePairVocabulary.Load(path);
        else if (modelVocabularySize is null or BuiltInVocabularySize) vocabulary = BuiltIn;
        else
        {
            throw new FileNotFoundException(NotFoundMessage(looked)
                + $" The {BuiltInSource} ({BuiltInVocabularySize} tokens) does not fit this model, whose text encoder has {modelVocabularySize} tokens: it needs its own vocabulary.");
        }
        int ids = vocabulary.Encoder.Values.Max() + 1;
        if (modelVocabularySize is int rows && ids > rows)
        {
            throw new InvalidModelFileException(vocabulary.Source,
                $"this vocabulary has {ids} token ids but the model's text encoder embeds only {rows}: it is not this model's tokenizer (pass --tokenizer PATH)");
        }
        return new ClipTokenizer(vocabulary, htmlUnescape);
    }

    private string? TryLocate(string? explicitPath, string? modelFolder, List<string> looked, string? modelFile = null)
    {
        foreach (var candidate in Candidates(explicitPath, modelFolder, modelFile))
        {
            looked.Add(candidate);
            if (IsVocabulary(candidate)) return candidate;
            if (explicitPath != null && candidate == explicitPath)
                throw new FileNotFoundException($"{explicitPath}: no CLIP vocabulary there (expected vocab.json + merges.txt or {OpenAiFileName})");
        }
        return null;
    }

    private static string NotFoundMessage(IEnumerable<string> looked) =>
        "CLIP tokenizer vocabulary not found (no download is attempted); looked in: " + string.Join("; ", looked)
        + $". Pass --tokenizer PATH, or put vocab.json + merges.txt (or {OpenAiFileName}) in one of those folders.";

    private static BytePairVocabulary LoadBuiltIn()
    {
        using var stream = typeof(TokenizerLocator).Assembly.GetManifestResourceStream(BuiltInResource)
            ?? throw new InvalidOperationException($"{BuiltInResource} is missing from {typeof(TokenizerLocator).Assembly.GetName().Name} (a build error)");
        return BytePairVocabulary.FromOpenAi(stream, BuiltInSource);
    }

    /// <summary>Every place looked at, in order (hub snapshots expanded).</summary>
    public IEnumerable<string> Candidates(string? explicitPath, string? modelFolder, string? modelFile = null)
    {
        if (!string.IsNullOrEmpty(explicitPath)) yield return explicitPath;
        if (!string.IsNullOrEmpty(modelFile) && !Directory.Exists(modelFile)) yield return BesideCheckpoint(modelFile);
        if (!string.IsNullOrEmpty(modelFolder)) yield return Path.Combine(modelFolder, "tokenizer");

        var hfHome = _environment("HF_HOME");
        var hubRoots = new List<string>();
        var hubCache = _environment("HF_HUB_CACHE");
        if (!string.IsNullOrEmpty(hubCache)) hubRoots.Add(hubCache);
        hubRoots.Add(!string.IsNullOrEmpty(hfHome) ? Path.Combine(hfHome, "hub") : Path.Combine(_home, ".cache", "huggingface", "hub"));
        foreach (var root in hubRoots)
        {
            var snapshots = Path.Combine(root, HubModelFolder, "snapshots");
            if (!Directory.Exists(snapshots))
            {
                yield return Path.Combine(snapshots, "*");
                continue;
            }
            foreach (var snapshot in Directory.GetDirectories(snapshots).Order(StringComparer.Ordinal)) yield return snapshot;
        }

        var data = _environment("SHARPDIFFUSION_DATA");
        if (!string.IsNullOrEmpty(data)) yield return Path.Combine(data, "clip");
        else yield return Path.Combine(_home, ".local", "share", "sharpdiffusion", "clip");
    }

    /// <summary>The tokenizer folder that belongs to a single-file checkpoint: <c>NAME.tokenizer</c> beside <c>NAME.safetensors</c>.</summary>
    public static string BesideCheckpoint(string checkpointPath) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(checkpointPath)) ?? ".", Path.GetFileNameWithoutExtension(checkpointPath) + ".tokenizer");

    private static bool IsVocabulary(string path)
    {
        if (File.Exists(path)) return true;
        if (!Directory.Exists(path)) return false;
        return File.Exists(Path.Combine(path, "vocab.json")) && File.Exists(Path.Combine(path, "merges.txt"))
            || File.Exists(Path.Combine(path, OpenAiFileName));
    }
}
