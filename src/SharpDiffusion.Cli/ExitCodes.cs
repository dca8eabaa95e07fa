using SharpDiffusion.Engine.Weights;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Pickle;
using SharpDiffusion.Png;
using SharpDiffusion.Workshop;

namespace SharpDiffusion.Cli;

/// <summary>
/// The process exit codes of every command (README, "Exit codes"). A bad input file is <see cref="Usage"/> wherever
/// the command cannot do its job without it (generate, merge, convert, bake, ...); <see cref="SomeInputsInvalid"/>
/// only for scans (inspect, list) that still processed everything else.
/// </summary>
internal static class ExitCodes
{
    /// <summary>Everything asked for was done.</summary>
    public const int Success = 0;

    /// <summary>A scan found invalid inputs (each reported in one line); the rest was still processed.</summary>
    public const int SomeInputsInvalid = 1;

    /// <summary>
    /// Bad usage or bad input: unknown option, missing argument, a path that does not exist, a file that is not the
    /// model the command needs, an output that would replace an input or cannot be written. Nothing was written.
    /// </summary>
    public const int Usage = 2;

    /// <summary>A bug: an unexpected exception, reported in one line with a request to report it.</summary>
    public const int InternalError = 3;

    /// <summary>A service the command needs cannot be reached: the Redis server of <c>--queue redis://</c> (serve, worker).</summary>
    public const int Unavailable = 4;

    /// <summary>
    /// Exceptions that describe the input or the environment rather than a bug: an unreadable or wrong model file, a
    /// refused workshop job, a model that does not load, a file that cannot be read or written. Any other exception
    /// that reaches <see cref="CliApp"/> is an internal error.
    /// </summary>
    public static bool IsBadInput(Exception e) =>
        e is InvalidModelFileException or PickleFormatException or PngFormatException or WorkshopException or ModelLoadException
            or IOException or UnauthorizedAccessException;
}
