namespace SharpDiffusion.Engine.Text.Conditioners;

/// <summary>Turns a batch of prompts into the conditioning of one model family.</summary>
public interface ITextConditioner
{
    /// <param name="prompts">One prompt per batch row (A1111 prompt syntax).</param>
    /// <param name="isNegative">The negative prompt: SDXL zeroes the text part when every prompt is empty, as A1111 does.</param>
    /// <param name="sizes">SDXL size conditioning (one for all rows); ignored by SD1/SD2. Default: 1024×1024, no crop.</param>
    Conditioning Encode(IReadOnlyList<string> prompts, bool isNegative = false, ImageSizeConditioning? sizes = null);
}
