using TorchSharp;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// Base of the engine's modules: children are registered under explicit names so that state_dict names are
/// exactly the checkpoint keys ("in_layers.0", "transformer_blocks.3", ...). Parameter-free upstream layers
/// (SiLU, Dropout) are simply not registered, which keeps the numbering of the others.
/// </summary>
public abstract class NamedModule : nn.Module
{
    protected NamedModule(string name) : base(name) { }

    /// <summary>Fields are never registered by reflection (their names are not checkpoint names).</summary>
    protected override void RegisterComponents() { }

    protected T Child<T>(string name, T module) where T : nn.Module
    {
        register_module(name, module);
        return module;
    }

    /// <summary>Inference only: no parameter records autograd history, whoever calls the model.</summary>
    protected void FreezeParameters()
    {
        foreach (var p in parameters()) p.requires_grad = false;
    }
}

/// <summary>A container whose children are named by position ("0", "2", ...), like torch Sequential/ModuleList.</summary>
public sealed class IndexedModules : NamedModule
{
    public IndexedModules() : base(nameof(IndexedModules)) { }

    public T Add<T>(int index, T module) where T : nn.Module => Child(index.ToString(System.Globalization.CultureInfo.InvariantCulture), module);
}

/// <summary>Where and in which element type a model's parameters are created (meta device: shapes only, no memory).</summary>
public sealed record LayerFactory(Device? Device = null, ScalarType? DType = null)
{
    public static LayerFactory Cpu(ScalarType dtype = ScalarType.Float32) => new(CPU, dtype);

    public TorchSharp.Modules.Linear Linear(long inFeatures, long outFeatures, bool bias = true) =>
        nn.Linear(inFeatures, outFeatures, bias, Device, DType);

    public TorchSharp.Modules.Conv2d Conv(long inChannels, long outChannels, long kernel, long stride = 1, long padding = 0) =>
        nn.Conv2d(inChannels, outChannels, kernel, stride, padding, device: Device, dtype: DType);

    public TorchSharp.Modules.LayerNorm LayerNorm(long dim, double eps = 1e-5) => nn.LayerNorm(dim, eps, device: Device, dtype: DType);

    public GroupNorm32 GroupNorm(long channels, double eps) => new(32, channels, eps, this);
}
