namespace SharpDiffusion.Formats.Torch;

/// <summary>One member of a zip archive, with the absolute file offset of its (stored or deflated) data.</summary>
internal sealed record ZipEntry(string Name, int Method, long CompressedSize, long Size, long DataOffset)
{
    public const int Stored = 0;
    public const int Deflated = 8;
}
