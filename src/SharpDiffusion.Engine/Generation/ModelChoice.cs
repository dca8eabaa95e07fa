using SharpDiffusion.Engine.Pipeline;

namespace SharpDiffusion.Engine.Generation;

/// <summary>
/// Which checkpoint to run and how to load it (config, tokenizer, VAE, precision, device, prediction). The service
/// keeps a loaded model while the next job asks for the same choice (<see cref="SameAs"/>).
/// </summary>
public sealed record ModelChoice(string CheckpointPath, CheckpointLoadOptions? Options = null)
{
    public CheckpointLoadOptions LoadOptions => Options ?? new CheckpointLoadOptions();

    /// <summary>
    /// Same files (full paths) and the same load settings. Devices compare by name (TorchSharp's
    /// <c>Device</c> has no value equality).
    /// </summary>
    public bool SameAs(ModelChoice other)
    {
        static string? Full(string? path) => path == null ? null : Path.GetFullPath(path);
        var (a, b) = (LoadOptions, other.LoadOptions);
        return Full(CheckpointPath) == Full(other.CheckpointPath)
            && Full(a.ConfigPath) == Full(b.ConfigPath)
            && Full(a.TokenizerPath) == Full(b.TokenizerPath)
            && Full(a.VaePath) == Full(b.VaePath)
            && a.DType == b.DType
            && a.Device.ToString() == b.Device.ToString()
            && a.Prediction == b.Prediction;
    }
}
