namespace SharpDiffusion.Workshop;

/// <summary>Progress of a merge or conversion: output tensor bytes written so far out of the total.</summary>
public readonly record struct WorkshopProgress(long BytesWritten, long TotalBytes);
