namespace SharpDiffusion.Engine.Tests;

/// <summary>
/// Locates the repository root and the reference data that ships with it in <c>tests/data</c> (see its README.md).
/// Every data path goes through <see cref="Require"/>: a missing file fails the test naming the file, so a partial
/// checkout can never pass by testing nothing.
/// </summary>
internal static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>tests/data: the reference data the tests read.</summary>
    public static string Data => Path.Combine(RepoRoot, "tests", "data");

    /// <summary>tests/data/golden: the canonical implementations' outputs (see its README.md).</summary>
    public static string Golden => Require(Path.Combine(Data, "golden"));

    /// <summary>tests/data/reference: exact tensor inventories of real SD1.5 files.</summary>
    public static string Reference => Require(Path.Combine(Data, "reference"));

    public static string GoldenFile(string relative) => Require(Path.Combine(Golden, relative));

    public static string ReferenceFile(string relative) => Require(Path.Combine(Reference, relative));

    /// <summary>The path itself when such a file or folder exists.</summary>
    /// <exception cref="TestDataMissingException">It does not: the message names it relative to the repository.</exception>
    public static string Require(string path)
    {
        if (File.Exists(path) || Directory.Exists(path)) return path;
        throw new TestDataMissingException(path, Path.GetRelativePath(RepoRoot, path));
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "SharpDiffusion.slnx"))) return dir.FullName;
        }
        throw new InvalidOperationException("Cannot find SharpDiffusion.slnx above " + AppContext.BaseDirectory);
    }
}

/// <summary>A reference data file a test needs is not in the checkout.</summary>
internal sealed class TestDataMissingException(string path, string relative)
    : FileNotFoundException($"test data missing: {relative} (the tests' reference data lives in tests/data, see tests/data/README.md)", path);
