using SharpDiffusion.Engine.Models;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;
using IDiffusionModel = SharpDiffusion.Engine.Sampling.IDiffusionModel;

namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary>
/// All 24 golden sampling runs with the real U-Net of each tiny checkpoint (config from its json), so the
/// samplers, denoisers, CFG and the U-Net are checked together against every stored step.
/// </summary>
public class RealUNetGoldenRunTests : GoldenRunTestsBase
{
    protected override IDiffusionModel CreateModel(GoldenModel which, string run) => new LoadedUNet(which);

    internal sealed class LoadedUNet : IDiffusionModel, IDisposable
    {
        private readonly UNetModel _unet;
        private readonly UNetDiffusionModel _model;

        public LoadedUNet(GoldenModel which)
        {
            var checkpoint = which.Checkpoint();
            var config = LdmConfigFile.Load(TestPaths.GoldenFile(checkpoint.Replace(".safetensors", ".config.json")));
            _unet = new UNetModel(UNetConfig.FromLdmConfig(config));
            using var file = SafetensorsFile.Open(TestPaths.GoldenFile(checkpoint));
            StrictLoader.Load(_unet, file, "model.diffusion_model.");
            _model = new UNetDiffusionModel(_unet);
        }

        public Tensor Predict(Tensor x, Tensor t, Conditioning cond) => _model.Predict(x, t, cond);

        public void Dispose() => _unet.Dispose();
    }
}
