namespace SharpDiffusion.Formats.Torch;

/// <summary>
/// Where one storage's bytes are: an absolute file offset and length for stored zip members and legacy files,
/// or the deflated zip member to inflate on demand.
/// </summary>
internal sealed record TorchStorageData(string Key, long FileOffset, long ByteLength, ZipEntry? DeflatedEntry);
