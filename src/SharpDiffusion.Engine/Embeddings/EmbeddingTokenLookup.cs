using SharpDiffusion.Engine.Text.Prompts;
using SharpDiffusion.Engine.Text.Tokenization;

namespace SharpDiffusion.Engine.Embeddings;

/// <summary>
/// A1111's <c>find_embedding_at_position</c> for one text encoder: candidates are grouped by the first token of their
/// name and tried longest name first (ties in registration order); the first whose whole token sequence matches wins.
/// Rebuilds itself when the database changes.
/// </summary>
public sealed class EmbeddingTokenLookup : IPromptEmbeddingLookup
{
    private readonly EmbeddingDatabase _database;
    private readonly ClipTokenizer _tokenizer;
    private Dictionary<int, List<(int[] Ids, PromptEmbedding Embedding)>> _byFirstToken = new();
    private int _builtVersion = -1;

    internal EmbeddingTokenLookup(EmbeddingDatabase database, ClipTokenizer tokenizer, int encoderWidth)
    {
        _database = database;
        _tokenizer = tokenizer;
        EncoderWidth = encoderWidth;
    }

    /// <summary>The width of the text encoder whose vectors this lookup returns.</summary>
    public int EncoderWidth { get; }

    public (PromptEmbedding Embedding, int TokenLength)? FindAt(IReadOnlyList<int> tokens, int position)
    {
        if (_builtVersion != _database.Version) Build();
        if (!_byFirstToken.TryGetValue(tokens[position], out var candidates)) return null;
        foreach (var (ids, embedding) in candidates)
        {
            if (position + ids.Length > tokens.Count) continue;
            bool match = true;
            for (int i = 1; i < ids.Length && match; i++) match = tokens[position + i] == ids[i];
            if (match) return (embedding, ids.Length);
        }
        return null;
    }

    private void Build()
    {
        var byFirst = new Dictionary<int, List<(int[] Ids, PromptEmbedding Embedding)>>();
        foreach (var embedding in _database.RegistrationOrder)
        {
            var ids = _tokenizer.Encode(embedding.Name).ToArray();
            if (ids.Length == 0) continue; // a name of only whitespace cannot appear in a prompt
            var vectors = embedding.VectorsFor(_database.EncoderWidths, EncoderWidth, out _)!;
            if (!byFirst.TryGetValue(ids[0], out var list)) byFirst[ids[0]] = list = new();
            list.Add((ids, new PromptEmbedding(embedding.Name, vectors)));
        }
        // OrderByDescending is stable: equal lengths keep registration order, as A1111's sorted() does.
        _byFirstToken = byFirst.ToDictionary(kv => kv.Key, kv => kv.Value.OrderByDescending(c => c.Ids.Length).ToList());
        _builtVersion = _database.Version;
    }
}
