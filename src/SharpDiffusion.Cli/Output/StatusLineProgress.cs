using SharpDiffusion.Engine.LoraTools;

namespace SharpDiffusion.Cli.Output;

/// <summary>One self-overwriting status line on a terminal's stderr (extract-lora, resize-lora).</summary>
internal sealed class StatusLineProgress(TextWriter error) : IProgress<LoraToolProgress>
{
    public void Report(LoraToolProgress value)
    {
        error.Write($"\r{value.Stage} {value.Done}/{value.Total}\u001b[K");
        if (value.Done == value.Total) error.WriteLine();
    }
}
