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

/// <summary>
/// Where and in which element type a model's parameters are created (meta device: shapes only, no memory).
/// With <see cref="Uninitialised"/> the parameters are left as allocated (torch.empty): a model that is loaded from
/// a file right after it is built would otherwise spend ~11 s (SD1.5 U-Net) drawing random weights it then overwrites.
/// </summary>
public sealed record LayerFactory(Device? Device = null, ScalarType? DType = null)
{
    public static LayerFactory Cpu(ScalarType dtype = ScalarType.Float32) => new(CPU, dtype);

    /// <summary>Uninitialised parameters on <paramref name="device"/>: for models whose every weight is loaded next.</summary>
    public static LayerFactory ForLoading(Device? device = null, ScalarType? dtype = null) => new(device, dtype) { Uninitialised = true };

    /// <summary>Parameters hold whatever memory they got; the caller loads every one of them.</summary>
    public bool Uninitialised { get; init; }

    private bool BuildOnMeta => Uninitialised && Device?.type != DeviceType.META;

    public TorchSharp.Modules.Linear Linear(long inFeatures, long outFeatures, bool bias = true)
    {
        if (!BuildOnMeta) return nn.Linear(inFeatures, outFeatures, bias, Device, DType);
        var layer = nn.Linear(inFeatures, outFeatures, bias, META, DType);
        layer.weight = Empty(outFeatures, inFeatures);
        if (bias) layer.bias = Empty(outFeatures);
        return layer;
    }

    public TorchSharp.Modules.Conv2d Conv(long inChannels, long outChannels, long kernel, long stride = 1, long padding = 0)
    {
        if (!BuildOnMeta) return nn.Conv2d(inChannels, outChannels, kernel, stride, padding, device: Device, dtype: DType);
        var layer = nn.Conv2d(inChannels, outChannels, kernel, stride, padding, device: META, dtype: DType);
        layer.weight = Empty(outChannels, inChannels, kernel, kernel);
        layer.bias = Empty(outChannels);
        return layer;
    }

    public TorchSharp.Modules.LayerNorm LayerNorm(long dim, double eps = 1e-5)
    {
        if (!BuildOnMeta) return nn.LayerNorm(dim, eps, device: Device, dtype: DType);
        var layer = nn.LayerNorm(dim, eps, device: META, dtype: DType);
        layer.weight = Empty(dim);
        layer.bias = Empty(dim);
        return layer;
    }

    /// <summary>A lookup table: N(0, 1) like torch's Embedding unless uninitialised.</summary>
    public TokenEmbedding Embedding(long count, long dim)
    {
        if (Uninitialised) return new TokenEmbedding(Empty(count, dim));
        var table = empty(new[] { count, dim }, DType ?? ScalarType.Float32, Device ?? CPU);
        if (Device?.type != DeviceType.META)
        {
            using (no_grad()) table.normal_();
        }
        return new TokenEmbedding(new TorchSharp.Modules.Parameter(table, requires_grad: false));
    }

    /// <summary>A free-standing parameter (positional embeddings, projections): zeros unless uninitialised.</summary>
    public TorchSharp.Modules.Parameter Parameter(params long[] shape) =>
        Uninitialised ? Empty(shape) : new TorchSharp.Modules.Parameter(zeros(shape, DType ?? ScalarType.Float32, Device ?? CPU), requires_grad: false);

    public GroupNorm32 GroupNorm(long channels, double eps) => new(32, channels, eps, this);

    private TorchSharp.Modules.Parameter Empty(params long[] shape) =>
        new(empty(shape, DType ?? ScalarType.Float32, Device ?? CPU), requires_grad: false);
}
