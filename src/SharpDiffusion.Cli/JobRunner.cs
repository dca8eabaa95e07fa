using SharpDiffusion.Workshop;
using Spectre.Console;

namespace SharpDiffusion.Cli;

/// <summary>Runs the jobs of the commands that write a model file (merge, convert): progress, summary line, exit code.</summary>
internal static class JobRunner
{
    /// <summary>
    /// Runs a workshop job with a Spectre progress bar on stderr (when it is a terminal), prints the summary line on
    /// stdout and turns a refused or failed job (bad input, unwritable output) into a one-line error and
    /// <see cref="ExitCodes.Usage"/>; anything else is left to <see cref="CliApp"/> as an internal error.
    /// </summary>
    public static int Run<T>(CliContext context, string verb, string output, Func<IProgress<WorkshopProgress>?, T> job, Func<T, string> summary)
    {
        try
        {
            T result;
            if (context.ErrorIsTerminal)
            {
                result = context.CreateErrorConsole().Progress()
                    .AutoClear(true)
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask(Markup.Escape($"{verb} {Path.GetFileName(output)}"), autoStart: true, maxValue: 1);
                        return job(new BarProgress(task));
                    });
            }
            else
            {
                result = job(null);
            }
            context.Output.WriteLine(summary(result));
            return ExitCodes.Success;
        }
        catch (Exception e) when (ExitCodes.IsBadInput(e))
        {
            return context.BadInput(e.Message);
        }
    }

    /// <summary>Sets the bar directly on the writing thread.</summary>
    private sealed class BarProgress(ProgressTask task) : IProgress<WorkshopProgress>
    {
        public void Report(WorkshopProgress value)
        {
            task.MaxValue = Math.Max(1, value.TotalBytes);
            task.Value = value.BytesWritten;
        }
    }
}
