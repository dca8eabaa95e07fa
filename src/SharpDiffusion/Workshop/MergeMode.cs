namespace SharpDiffusion.Workshop;

/// <summary>The A1111 Checkpoint Merger interpolation methods.</summary>
public enum MergeMode
{
    /// <summary><c>(1 - M) * A + M * B</c>.</summary>
    WeightedSum,

    /// <summary><c>A + M * (B - C)</c>.</summary>
    AddDifference,
}

public static class MergeModeNames
{
    /// <summary>The name A1111 writes as <c>interp_method</c> in <c>sd_merge_recipe</c>.</summary>
    public static string A1111Name(this MergeMode mode) => mode switch
    {
        MergeMode.WeightedSum => "Weighted sum",
        MergeMode.AddDifference => "Add difference",
        _ => mode.ToString(),
    };

    /// <summary>The command-line spelling: weighted-sum, add-difference.</summary>
    public static string CliName(this MergeMode mode) => mode switch
    {
        MergeMode.WeightedSum => "weighted-sum",
        MergeMode.AddDifference => "add-difference",
        _ => mode.ToString(),
    };
}
