namespace SharpDiffusion.Engine.Text.Tokenization;

/// <summary>
/// Finds the CLIP vocabulary without any network access, in this order: an explicit path (file or folder), the
/// model folder's <c>tokenizer/</c> (diffusers), the Hugging Face cache of openai/clip-vit-large-patch14, then the
/// data folder (<c>$SHARPDIFFUSION_DATA/clip/</c> or <c>~/.local/share/sharpdiffusion/clip/</c>).
/// </summary>
public sealed class TokenizerLocator
{
    public const string OpenAiFileName = "bpe_simple_vocab_16e6.txt.gz";
    private const string HubModelFolder = "models--openai--clip-vit-large-patch14";

    private readonly Func<string, string?> _environment;
    private readonly string _home;

    /// <param name="environment">Environment lookup (tests pass their own); defaults to the process environment.</param>
    /// <param name="homeDirectory">The user's home folder; defaults to the profile folder.</param>
    public TokenizerLocator(Func<string, string?>? environment = null, string? homeDirectory = null)
    {
        _environment = environment ?? Environment.GetEnvironmentVariable;
        _home = homeDirectory ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
    }

    /// <summary>The vocabulary location (a folder with vocab.json + merges.txt or the openai .gz, or such a file).</summary>
    /// <exception cref="FileNotFoundException">Nothing found; the message lists every place looked at.</exception>
    public string Locate(string? explicitPath = null, string? modelFolder = null)
    {
        var looked = new List<string>();
        foreach (var candidate in Candidates(explicitPath, modelFolder))
        {
            looked.Add(candidate);
            if (IsVocabulary(candidate)) return candidate;
            if (explicitPath != null && candidate == explicitPath)
                throw new FileNotFoundException($"{explicitPath}: no CLIP vocabulary there (expected vocab.json + merges.txt or {OpenAiFileName})");
        }
        throw new FileNotFoundException(
            "CLIP tokenizer vocabulary not found (no download is attempted); looked in: " + string.Join("; ", looked)
            + $". Pass --tokenizer PATH, or put vocab.json + merges.txt (or {OpenAiFileName}) in one of those folders.");
    }

    /// <summary>Locates and loads the vocabulary.</summary>
    public ClipTokenizer LoadTokenizer(string? explicitPath = null, string? modelFolder = null, bool htmlUnescape = true) =>
        ClipTokenizer.Load(Locate(explicitPath, modelFolder), htmlUnescape);

    /// <summary>Every place looked at, in order (hub snapshots expanded).</summary>
    public IEnumerable<string> Candidates(string? explicitPath, string? modelFolder)
    {
        if (!string.IsNullOrEmpty(explicitPath)) yield return explicitPath;
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

    private static bool IsVocabulary(string path)
    {
        if (File.Exists(path)) return true;
        if (!Directory.Exists(path)) return false;
        return File.Exists(Path.Combine(path, "vocab.json")) && File.Exists(Path.Combine(path, "merges.txt"))
            || File.Exists(Path.Combine(path, OpenAiFileName));
    }
}
