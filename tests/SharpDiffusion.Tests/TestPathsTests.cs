namespace SharpDiffusion.Tests;

public class TestPathsTests
{
    [Fact]
    public void AMissingDataFileFailsTheTestNamingTheFile()
    {
        var e = Assert.Throws<TestDataMissingException>(() => TestPaths.GoldenFile("no_such_golden.safetensors"));
        Assert.Contains(Path.Combine("tests", "data", "golden", "no_such_golden.safetensors"), e.Message);
        Assert.Equal(Path.Combine(TestPaths.Data, "golden", "no_such_golden.safetensors"), e.FileName);

        var r = Assert.Throws<TestDataMissingException>(() => TestPaths.ReferenceFile("no_such_inventory.tsv"));
        Assert.Contains(Path.Combine("tests", "data", "reference", "no_such_inventory.tsv"), r.Message);
    }

    [Fact]
    public void TheReferenceDataLivesInsideTheRepository()
    {
        var checkpoint = TestPaths.GoldenFile("tiny_sd1.safetensors");
        Assert.StartsWith(Path.Combine(TestPaths.RepoRoot, "tests", "data") + Path.DirectorySeparatorChar, checkpoint);
        Assert.Equal(13107764, new FileInfo(checkpoint).Length); // the size the golden README's inspect example shows
        Assert.True(File.Exists(TestPaths.ReferenceFile("sd15_single_file.tsv")));
    }
}
