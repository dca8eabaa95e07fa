namespace SharpDiffusion.Engine.Tests.Training;

/// <summary>
/// Tests whose results depend on libtorch's process-wide generator (A1111 hypernetwork dropout is seeded through
/// torch.manual_seed, as A1111 does) run alone: any other test drawing from that generator in parallel would change
/// their dropout masks (seen once on a clean CI clone: a resumed run that was not bit-identical).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalTorchRngCollection
{
    public const string Name = "global torch generator";
}
