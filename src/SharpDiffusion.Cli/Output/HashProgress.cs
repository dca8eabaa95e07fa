using SharpDiffusion.Hashing;
using Spectre.Console;

namespace SharpDiffusion.Cli.Output;

/// <summary>Shows a Spectre progress bar (on stderr) while a large file is hashed.</summary>
internal sealed class HashProgress(IAnsiConsole console, long thresholdBytes = HashProgress.DefaultThresholdBytes)
{
    /// <summary>Smaller files hash in well under a second: no bar for them.</summary>
    public const long DefaultThresholdBytes = 256L * 1024 * 1024;

    public ModelHashes Run(string path, long size, Func<IProgress<long>?, ModelHashes> compute)
    {
        if (size < thresholdBytes) return compute(null);
        return console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape("hashing " + Path.GetFileName(path)), autoStart: true, maxValue: size);
                var hashes = compute(new TaskProgress(task));
                task.Value = size;
                return hashes;
            });
    }

    /// <summary>Sets the task value directly (Progress&lt;T&gt; would post to a thread pool and lag behind).</summary>
    private sealed class TaskProgress(ProgressTask task) : IProgress<long>
    {
        public void Report(long value) => task.Value = value;
    }
}
