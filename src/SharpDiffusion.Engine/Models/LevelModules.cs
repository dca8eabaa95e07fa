using TorchSharp.Modules;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// An attribute-style holder (upstream's bare <c>nn.Module()</c> with <c>.block</c>, <c>.attn</c>, <c>.downsample</c>
/// assigned), giving names such as "down.0.block.1" and "down.0.downsample.conv".
/// </summary>
public sealed class LevelModules : NamedModule
{
    public LevelModules() : base("Module") { }

    public IndexedModules Add(string name) => Child(name, new IndexedModules());

    public T AddNamed<T>(string name, T module) where T : TorchSharp.torch.nn.Module => Child(name, module);

    /// <summary>Registers "name.conv" (upstream's Downsample/Upsample wrappers hold a single conv).</summary>
    public Conv2d AddConv(string name, Conv2d conv)
    {
        var wrapper = Child(name, new LevelModules());
        return wrapper.AddNamed("conv", conv);
    }
}
