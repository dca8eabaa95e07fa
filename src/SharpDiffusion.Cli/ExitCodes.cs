namespace SharpDiffusion.Cli;

/// <summary>Process exit codes of every command.</summary>
internal static class ExitCodes
{
    /// <summary>Everything asked for was read.</summary>
    public const int Success = 0;

    /// <summary>At least one input was invalid (reported, the rest was still processed).</summary>
    public const int InvalidInput = 1;

    /// <summary>Bad usage: unknown option, missing argument, path that does not exist.</summary>
    public const int Usage = 2;
}
