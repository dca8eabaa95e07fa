namespace SharpDiffusion.Engine.ControlNet;

/// <summary>A loaded ControlNet with where it came from.</summary>
public sealed class LoadedControlNet(ControlNetModel model, ControlNetLayout layout, string path) : IDisposable
{
    public ControlNetModel Model { get; } = model;
    public ControlNetLayout Layout { get; } = layout;
    public string Path { get; } = path;

    public void Dispose() => Model.Dispose();
}
