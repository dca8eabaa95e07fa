namespace SharpDiffusion.Formats.Pickle;

/// <summary>
/// A numpy array rebuilt from <c>numpy.core.multiarray._reconstruct</c> + BUILD state, as data: dtype code
/// (e.g. "&lt;f4"), shape and the raw bytes. Object arrays are refused.
/// </summary>
public sealed class NumpyArray
{
    public string DTypeCode { get; internal set; } = "|u1";
    public long[] Shape { get; internal set; } = [0];
    public bool FortranOrder { get; internal set; }
    public byte[] Data { get; internal set; } = [];
}
