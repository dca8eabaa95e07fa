namespace SharpDiffusion.Png;

/// <summary>A file that is not a readable PNG. The message is one line: the file and the problem.</summary>
public sealed class PngFormatException : Exception
{
    public PngFormatException(string source, string problem, Exception? inner = null) : base($"{source}: {problem}", inner)
    {
        Origin = source;
        Problem = problem;
    }

    /// <summary>The file (or "stream") that was read.</summary>
    public string Origin { get; }

    public string Problem { get; }
}
