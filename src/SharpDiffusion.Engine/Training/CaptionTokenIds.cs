using SharpDiffusion.Architectures;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Text.Tokenization;

namespace SharpDiffusion.Engine.Training;

/// <summary>
/// One CLIP context row of token ids for training: BOS, the caption's tokens (at most 75), EOS, then padding. The
/// ids come from the checkpoint's own tokenizer, so a model with a vocabulary fitted to its captions (sharp-emoji)
/// trains with the ids it generates with, not CLIP's 49406/49407.
/// </summary>
internal static class CaptionTokenIds
{
    public const int ContextLength = 77;

    /// <summary>transformers' CLIP tokenizer pads with the end token (SD 1.x), open_clip's with 0 (SD 2.x).</summary>
    public static long PadId(StableDiffusionCheckpoint checkpoint) =>
        checkpoint.Architecture.TextEncoders[0].Layout == TextEncoderLayout.HuggingFaceClip ? checkpoint.Tokenizer.EosId : 0;

    /// <summary>Writes BOS, <paramref name="body"/> (cut to 75 tokens), EOS and padding into <paramref name="row"/> (77 long).</summary>
    public static void Fill(Span<long> row, ClipTokenizer tokenizer, IReadOnlyList<long> body, long pad)
    {
        int n = Math.Min(body.Count, ContextLength - 2);
        row.Fill(pad);
        row[0] = tokenizer.BosId;
        for (int i = 0; i < n; i++) row[i + 1] = body[i];
        row[n + 1] = tokenizer.EosId;
    }

    /// <summary>The ids of one caption as a [1, 77] row.</summary>
    public static long[] ForCaption(StableDiffusionCheckpoint checkpoint, string caption)
    {
        var row = new long[ContextLength];
        Fill(row, checkpoint.Tokenizer, checkpoint.Tokenizer.Encode(caption).Select(t => (long)t).ToList(), PadId(checkpoint));
        return row;
    }
}
