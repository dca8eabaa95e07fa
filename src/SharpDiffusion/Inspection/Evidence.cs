using SharpDiffusion.Architectures;
using System.Globalization;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Inspection;

/// <summary>Formats evidence lines the same way everywhere: the key, its shape, then what it means.</summary>
internal static class Evidence
{
    /// <summary>Classifications stay readable: a verdict cites at most this many reasons.</summary>
    public const int MaxLines = 5;

    public static string Shape(TensorInfo t) => "[" + string.Join(", ", t.Shape.Select(d => d.ToString(CultureInfo.InvariantCulture))) + "]";

    /// <summary>"name [a, b]: meaning".</summary>
    public static string Key(TensorInfo t, string meaning) => t.Name + " " + Shape(t) + ": " + meaning;

    public static void Add(ModelClassification result, string line)
    {
        if (result.Evidence.Count < MaxLines && !result.Evidence.Contains(line)) result.Evidence.Add(line);
    }

    public static void Add(ModelClassification result, TensorInfo t, string meaning) => Add(result, Key(t, meaning));

    public static string Family(BaseFamily family) => family.DisplayName();
}
