using TorchSharp;

namespace SharpDiffusion.Engine.Tests;

/// <summary>The engine's native libraries load on this machine (the GLIBCXX weak-version build step works).</summary>
public class NativeLoadingTests
{
    [Fact]
    public void LibTorchSharpLoadsAndComputes()
    {
        using var gen = new torch.Generator(42);
        using var t = torch.randn(new long[] { 4 }, generator: gen);
        // torch.randn(4, generator=torch.Generator().manual_seed(42)) in PyTorch.
        Assert.Equal(new[] { 0.33669037f, 0.1288094f, 0.23446237f, 0.23033303f }, t.data<float>().ToArray());
    }
}
