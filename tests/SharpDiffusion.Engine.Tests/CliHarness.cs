using SharpDiffusion.Cli;
using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests;

/// <summary>Runs the <c>sharpdiffusion</c> command in-process with captured output (no terminal).</summary>
internal static class CliHarness
{
    public static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = CliApp.Run(args, stdout, stderr, stderrIsTerminal: false);
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>The final latents <c>generate --save-latents PATH</c> wrote (tensor <c>latents</c>), flattened.</summary>
    public static float[] SavedLatents(string path)
    {
        using var file = SafetensorsFile.Open(path);
        using var v = TensorReading.Read(file, file.Tensors.Single(t => t.Name == "latents"), ScalarType.Float32);
        return v.data<float>().ToArray();
    }
}
