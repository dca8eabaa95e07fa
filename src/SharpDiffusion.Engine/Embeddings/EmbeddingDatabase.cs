using SharpDiffusion.Engine.Text.Prompts;
using SharpDiffusion.Engine.Text.Tokenization;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.Embeddings;

/// <summary>
/// The textual-inversion embeddings available to one model (A1111's <c>EmbeddingDatabase</c>): loaded from folders,
/// checked against the model's text-encoder widths (others are skipped with a warning that says why), and looked up
/// in prompts through <see cref="ForEncoder"/>. Owns the embeddings it holds.
/// </summary>
public sealed class EmbeddingDatabase : IDisposable
{
    /// <summary>The file types A1111 reads as embeddings (images with embedded data are not supported here).</summary>
    public static readonly IReadOnlyList<string> FileExtensions = new[] { ".pt", ".bin", ".safetensors" };

    private readonly Dictionary<string, TextualInversionEmbedding> _byName = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TextualInversionEmbedding> _skipped = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _unreadable = new(StringComparer.Ordinal);
    private readonly List<TextualInversionEmbedding> _order = new();
    private readonly List<TextualInversionEmbedding> _owned = new();
    private readonly List<string> _warnings = new();

    /// <param name="encoderWidths">The model's text-encoder widths in order: SD1 [768], SD2 [1024], SDXL [768, 1280].</param>
    public EmbeddingDatabase(IReadOnlyList<int> encoderWidths)
    {
        if (encoderWidths.Count is < 1 or > 2) throw new ArgumentException("a model has one or two text encoders", nameof(encoderWidths));
        EncoderWidths = encoderWidths.ToArray();
    }

    public IReadOnlyList<int> EncoderWidths { get; }

    /// <summary>Usable embeddings by name, sorted case-insensitively as A1111 lists them.</summary>
    public IReadOnlyDictionary<string, TextualInversionEmbedding> Embeddings =>
        _byName.Values.OrderBy(e => e.Name.ToLowerInvariant(), StringComparer.Ordinal).ToDictionary(e => e.Name, StringComparer.Ordinal);

    /// <summary>Embeddings that do not fit this model's text encoders (A1111's <c>skipped_embeddings</c>).</summary>
    public IReadOnlyDictionary<string, TextualInversionEmbedding> Skipped => _skipped;

    /// <summary>Files that failed to load, by the name a prompt would use (the file stem), with the problem.</summary>
    public IReadOnlyDictionary<string, string> Unreadable => _unreadable;

    /// <summary>One line per file that was skipped or replaced, and why.</summary>
    public IReadOnlyList<string> Warnings => _warnings;

    /// <summary>Changes whenever the set of usable embeddings changes (lookups rebuild themselves on it).</summary>
    internal int Version { get; private set; }

    /// <summary>Loads every embedding under <paramref name="folder"/> into a new database.</summary>
    public static EmbeddingDatabase FromFolder(string folder, IReadOnlyList<int> encoderWidths, Func<string, IModelFile> open)
    {
        var db = new EmbeddingDatabase(encoderWidths);
        db.LoadFolder(folder, open);
        return db;
    }

    /// <summary>
    /// A1111's <c>load_from_dir</c>: every .pt/.bin/.safetensors file under <paramref name="folder"/>, recursively
    /// (a folder's files before its subfolders, each in ordinal name order), empty files ignored; a file that fails
    /// to load is skipped with a warning. A later file with the same name replaces the earlier one.
    /// </summary>
    /// <param name="folder">The embeddings folder; a missing folder loads nothing.</param>
    /// <param name="open">Opens a model file by path (the format reader: safetensors, torch pickle).</param>
    public void LoadFolder(string folder, Func<string, IModelFile> open)
    {
        if (!Directory.Exists(folder)) return;
        foreach (var path in FilesTopDown(folder))
        {
            if (!FileExtensions.Contains(Path.GetExtension(path).ToLowerInvariant())) continue;
            try
            {
                if (new FileInfo(path).Length == 0) continue;
                TextualInversionEmbedding embedding;
                using (var file = open(path)) embedding = TextualInversionEmbedding.Load(file);
                Register(embedding);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _warnings.Add($"embedding {path} was not loaded: {e.Message}");
                _unreadable[Path.GetFileNameWithoutExtension(path)] = "unreadable file";
            }
        }
    }

    /// <summary>
    /// Adds an embedding (the database takes ownership). Returns false, with a warning, when its vectors do not fit
    /// this model's text encoders; it is then kept in <see cref="Skipped"/>.
    /// </summary>
    public bool Register(TextualInversionEmbedding embedding)
    {
        _owned.Add(embedding);
        var problem = embedding.CompatibilityProblem(EncoderWidths);
        if (problem is not null)
        {
            _skipped[embedding.Name] = embedding;
            _warnings.Add($"embedding skipped: {problem}");
            return false;
        }
        if (_byName.TryGetValue(embedding.Name, out var previous))
        {
            _order.Remove(previous);
            _warnings.Add($"embedding {embedding.Name}: {embedding.FilePath ?? "(in memory)"} replaces {previous.FilePath ?? "(in memory)"} (same name)");
        }
        _byName[embedding.Name] = embedding;
        _order.Add(embedding);
        Version++;
        return true;
    }

    public TextualInversionEmbedding? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>
    /// The prompt lookup for one text encoder: names tokenised with <paramref name="tokenizer"/>, vectors for
    /// <paramref name="encoderWidth"/> (for SDXL: 768 → clip_l, 1280 → clip_g).
    /// </summary>
    public IPromptEmbeddingLookup ForEncoder(ClipTokenizer tokenizer, int encoderWidth)
    {
        if (!EncoderWidths.Contains(encoderWidth))
            throw new ArgumentException($"the model has no text encoder of width {encoderWidth} (widths: {string.Join(", ", EncoderWidths)})", nameof(encoderWidth));
        return new EmbeddingTokenLookup(this, tokenizer, encoderWidth);
    }

    /// <summary>Usable embeddings in registration order (later replacements last), for building lookups.</summary>
    internal IReadOnlyList<TextualInversionEmbedding> RegistrationOrder => _order;

    /// <summary>
    /// A1111's <c>TI hashes</c> infotext value for the embeddings a prompt used, in order of first use:
    /// <c>name: shorthash, ...</c> with ':' and ',' removed from names; null when none has a hash.
    /// </summary>
    public string? HashesInfotext(IEnumerable<string> usedNames)
    {
        var parts = usedNames.Distinct(StringComparer.Ordinal)
            .Select(Find)
            .Where(e => e?.ShortHash is not null)
            .Select(e => $"{e!.Name.Replace(":", "").Replace(",", "")}: {e.ShortHash}")
            .ToList();
        return parts.Count == 0 ? null : string.Join(", ", parts);
    }

    /// <summary>
    /// Names of the embeddings <paramref name="chunker"/> places in <paramref name="prompts"/>, in order of first use
    /// (what A1111 collects for <c>TI hashes</c> while encoding; pass positive and negative prompts).
    /// </summary>
    public static IReadOnlyList<string> NamesUsed(PromptChunker chunker, IEnumerable<string> prompts)
    {
        var names = new List<string>();
        foreach (var prompt in prompts)
            foreach (var chunk in chunker.Chunk(prompt).Chunks)
                foreach (var placement in chunk.Embeddings)
                    if (!names.Contains(placement.Embedding.Name)) names.Add(placement.Embedding.Name);
        return names;
    }

    public void Dispose()
    {
        foreach (var e in _owned) e.Dispose();
        _owned.Clear();
        _byName.Clear();
        _skipped.Clear();
        _unreadable.Clear();
        _order.Clear();
        Version++;
    }

    /// <summary>os.walk(top-down, followlinks) order with a deterministic order inside each folder.</summary>
    private static IEnumerable<string> FilesTopDown(string folder)
    {
        var pending = new Stack<string>();
        var visited = new HashSet<string>(StringComparer.Ordinal);
        pending.Push(folder);
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            // Links are followed (as A1111's os.walk(followlinks=True)), but a loop is walked once.
            var resolved = new DirectoryInfo(dir).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? Path.GetFullPath(dir);
            if (!visited.Add(resolved)) continue;
            string[] files, subdirs;
            try
            {
                files = Directory.GetFiles(dir);
                subdirs = Directory.GetDirectories(dir);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue;
            }
            Array.Sort(files, StringComparer.Ordinal);
            Array.Sort(subdirs, StringComparer.Ordinal);
            foreach (var f in files) yield return f;
            for (int i = subdirs.Length - 1; i >= 0; i--) pending.Push(subdirs[i]);
        }
    }
}
