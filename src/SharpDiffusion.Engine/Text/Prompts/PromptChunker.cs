using SharpDiffusion.Engine.Text.Tokenization;

namespace SharpDiffusion.Engine.Text.Prompts;

/// <summary>How A1111 turns attention into multipliers (<c>opts.emphasis</c>).</summary>
public enum EmphasisMode
{
    /// <summary>Multiply by the weights, then restore the original mean (A1111's default).</summary>
    Original,

    /// <summary>Multiply by the weights without restoring the mean.</summary>
    NoNorm,

    /// <summary>Parse and chunk, but leave the encoder output unchanged.</summary>
    Ignore,

    /// <summary>No parsing at all: brackets and BREAK are literal text.</summary>
    None,
}

/// <summary>
/// A1111's <c>tokenize_line</c>: parse the prompt's attention, tokenize each piece, fill 75-token chunks (BREAK closes
/// a chunk; a 76th non-comma token moves the text after a comma at most <see cref="CommaPaddingBacktrack"/> tokens
/// back into the next chunk), pad with the end token and wrap each chunk in BOS/EOS.
/// </summary>
public sealed class PromptChunker
{
    public const int ChunkLength = 75;

    private readonly ClipTokenizer _tokenizer;
    private readonly int _commaToken;

    public PromptChunker(ClipTokenizer tokenizer, EmphasisMode emphasis = EmphasisMode.Original, int commaPaddingBacktrack = 20,
        IPromptEmbeddingLookup? embeddings = null)
    {
        _tokenizer = tokenizer;
        _commaToken = tokenizer.Vocabulary.Encoder.TryGetValue(",</w>", out var comma) ? comma : -1;
        Emphasis = emphasis;
        CommaPaddingBacktrack = commaPaddingBacktrack;
        Embeddings = embeddings;
    }

    public EmphasisMode Emphasis { get; }
    public int CommaPaddingBacktrack { get; }
    public IPromptEmbeddingLookup? Embeddings { get; }

    /// <summary>The chunks of one prompt and A1111's token count (75 per closed chunk + the unpadded last one).</summary>
    public (IReadOnlyList<PromptChunk> Chunks, int TokenCount) Chunk(string prompt)
    {
        var parsed = Emphasis == EmphasisMode.None ? new[] { new WeightedText(prompt, 1.0) } : PromptAttentionParser.Parse(prompt);

        var chunks = new List<PromptChunk>();
        var tokens = new List<int>();
        var multipliers = new List<double>();
        var fixes = new List<EmbeddingPlacement>();
        int tokenCount = 0;
        int lastComma = -1;

        void NextChunk(bool isLast = false)
        {
            tokenCount += isLast ? tokens.Count : ChunkLength;
            var ids = new List<int>(ChunkLength + 2) { _tokenizer.BosId };
            var mults = new List<double>(ChunkLength + 2) { 1.0 };
            ids.AddRange(tokens);
            mults.AddRange(multipliers);
            for (int i = tokens.Count; i < ChunkLength; i++)
            {
                ids.Add(_tokenizer.EosId);
                mults.Add(1.0);
            }
            ids.Add(_tokenizer.EosId);
            mults.Add(1.0);
            chunks.Add(new PromptChunk(ids, mults, fixes.ToArray()));
            tokens = new List<int>();
            multipliers = new List<double>();
            fixes = new List<EmbeddingPlacement>();
            lastComma = -1;
        }

        foreach (var segment in parsed)
        {
            if (segment.IsBreak)
            {
                NextChunk();
                continue;
            }
            var ids = _tokenizer.Encode(segment.Text);
            int position = 0;
            while (position < ids.Count)
            {
                int token = ids[position];
                if (token == _commaToken) lastComma = tokens.Count;
                else if (CommaPaddingBacktrack != 0 && tokens.Count == ChunkLength && lastComma != -1
                         && tokens.Count - lastComma <= CommaPaddingBacktrack)
                {
                    int breakLocation = lastComma + 1;
                    var movedTokens = tokens.GetRange(breakLocation, tokens.Count - breakLocation);
                    var movedMultipliers = multipliers.GetRange(breakLocation, multipliers.Count - breakLocation);
                    tokens.RemoveRange(breakLocation, tokens.Count - breakLocation);
                    multipliers.RemoveRange(breakLocation, multipliers.Count - breakLocation);
                    NextChunk();
                    tokens = movedTokens;
                    multipliers = movedMultipliers;
                }
                if (tokens.Count == ChunkLength) NextChunk();

                var found = Embeddings?.FindAt(ids, position);
                if (found == null)
                {
                    tokens.Add(token);
                    multipliers.Add(segment.Weight);
                    position++;
                    continue;
                }
                var (embedding, tokenLength) = found.Value;
                if (tokens.Count + embedding.VectorCount > ChunkLength) NextChunk();
                fixes.Add(new EmbeddingPlacement(tokens.Count, embedding));
                for (int i = 0; i < embedding.VectorCount; i++)
                {
                    tokens.Add(0);
                    multipliers.Add(segment.Weight);
                }
                position += tokenLength;
            }
        }
        if (tokens.Count > 0 || chunks.Count == 0) NextChunk(isLast: true);
        return (chunks, tokenCount);
    }

    /// <summary>A1111's <c>empty_chunk()</c>: BOS then 76 end tokens, multipliers 1; pads a batch's shorter prompts.</summary>
    public PromptChunk EmptyChunk()
    {
        var ids = new List<int>(ChunkLength + 2) { _tokenizer.BosId };
        for (int i = 0; i <= ChunkLength; i++) ids.Add(_tokenizer.EosId);
        return new PromptChunk(ids, Enumerable.Repeat(1.0, ChunkLength + 2).ToArray(), Array.Empty<EmbeddingPlacement>());
    }

    /// <summary>Chunks of a batch of prompts, each padded with <see cref="EmptyChunk"/> to the longest: [prompt][chunk].</summary>
    public IReadOnlyList<IReadOnlyList<PromptChunk>> ChunkBatch(IReadOnlyList<string> prompts)
    {
        var perPrompt = prompts.Select(p => Chunk(p).Chunks).ToList();
        int k = perPrompt.Max(c => c.Count);
        return perPrompt
            .Select(c => (IReadOnlyList<PromptChunk>)c.Concat(Enumerable.Range(0, k - c.Count).Select(_ => EmptyChunk())).ToList())
            .ToList();
    }
}
