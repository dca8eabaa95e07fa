namespace SharpDiffusion.Formats;

/// <summary>A file that cannot be read as a model. The message is one line: the file and the problem.</summary>
public sealed class InvalidModelFileException : Exception
{
    public InvalidModelFileException(string path, string problem, Exception? inner = null)
        : base($"{path}: {problem}", inner)
    {
        FilePath = path;
        Problem = problem;
    }

    public string FilePath { get; }
    public string Problem { get; }
}
