using SharpDiffusion.Architectures;
using SharpDiffusion.Engine.Pipeline;

namespace SharpDiffusion.Engine.Generation;

/// <summary>The model a <see cref="GenerationService"/> holds, as a caller may report it.</summary>
public sealed record LoadedModel(
    ModelChoice Choice,
    string Path,
    ModelIdentity Identity,
    ModelArchitecture Architecture,
    Prediction Prediction,
    PredictionSource PredictionSource,
    string? VaePath,
    TimeSpan LoadTime,
    bool Reused);
