namespace SharpDiffusion.Engine.Tests;

/// <summary>Locates the repository root and the shared reference data (../shared beside the repository).</summary>
internal static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>../shared/golden: the canonical implementations' outputs (see its README.md).</summary>
    public static string Golden => Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "golden"));

    /// <summary>../shared/reference: exact tensor inventories of real SD1.5 files.</summary>
    public static string Reference => Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "reference"));

    public static string GoldenFile(string relative) => Path.Combine(Golden, relative);

    public static string ReferenceFile(string relative) => Path.Combine(Reference, relative);

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "SharpDiffusion.slnx"))) return dir.FullName;
        }
        throw new InvalidOperationException("Cannot find SharpDiffusion.slnx above " + AppContext.BaseDirectory);
    }
}
