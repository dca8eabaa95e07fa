using SharpDiffusion.Inspection;
using SharpDiffusion.Tests.Fixtures;

namespace SharpDiffusion.Tests.Classification;

/// <summary>Shared checks: evidence is present, short, and names the deciding key; classification never read weights.</summary>
internal static class ClassificationAssert
{
    public static void EvidenceMentions(ModelClassification result, params string[] fragments)
    {
        Assert.InRange(result.Evidence.Count, 1, 5);
        foreach (var fragment in fragments)
        {
            Assert.True(result.Evidence.Any(line => line.Contains(fragment, StringComparison.Ordinal)),
                $"no evidence line mentions '{fragment}':\n" + string.Join("\n", result.Evidence));
        }
    }

    /// <summary>Only LoRA alpha scalars may be read; everything else comes from the header.</summary>
    public static void HeadersOnly(InMemoryModelFile file) =>
        Assert.All(file.ReadLog, name => Assert.EndsWith(".alpha", name, StringComparison.Ordinal));
}
