namespace SharpDiffusion.Workshop;

/// <summary>What a conversion wrote.</summary>
public sealed record ConvertResult
{
    public required string Output { get; init; }

    public int Tensors { get; init; }

    /// <summary>Tensors of the input left out (EMA, loss, optimizer).</summary>
    public int Dropped { get; init; }

    /// <summary>With EMA only: <c>model.*</c> tensors whose data came from their EMA copy.</summary>
    public int FromEma { get; init; }

    /// <summary>Float tensors stored at a different precision than the input's.</summary>
    public int PrecisionChanged { get; init; }

    public long OutputBytes { get; init; }

    public required IReadOnlyDictionary<string, string> Metadata { get; init; }
}
