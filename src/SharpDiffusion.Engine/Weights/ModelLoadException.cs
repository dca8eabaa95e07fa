namespace SharpDiffusion.Engine.Weights;

/// <summary>Weights that do not fit the module they are loaded into (missing, unexpected or mis-shaped keys).</summary>
public sealed class ModelLoadException : Exception
{
    public ModelLoadException(string message) : base(message) { }
}
