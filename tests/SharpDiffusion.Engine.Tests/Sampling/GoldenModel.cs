namespace SharpDiffusion.Engine.Tests.Sampling;

/// <summary>The three tiny golden models and what their sampling runs need.</summary>
public enum GoldenModel
{
    /// <summary>tiny_sd1: eps U-Net, context [B,77,32], CFG 7, seed 42, 9 runs.</summary>
    Sd1,

    /// <summary>tiny_sd2v: v U-Net, context [B,77,16], CFG 6.5, seed 31337, 9 runs.</summary>
    Sd2v,

    /// <summary>tiny_sdxl: eps U-Net with y [B,120], context [B,77,24], CFG 5, seed 42, 6 runs (incl. sgm_euler).</summary>
    Sdxl,
}

internal static class GoldenModels
{
    public static string GoldenFile(this GoldenModel model) => model switch
    {
        GoldenModel.Sd1 => "tiny_sd1_golden",
        GoldenModel.Sd2v => "tiny_sd2v_golden",
        _ => "tiny_sdxl_golden",
    };

    /// <summary>The checkpoint whose U-Net a real full run needs.</summary>
    public static string Checkpoint(this GoldenModel model) => model switch
    {
        GoldenModel.Sd1 => "tiny_sd1.safetensors",
        GoldenModel.Sd2v => "tiny_sd2v.safetensors",
        _ => "tiny_sdxl.safetensors",
    };

    public static bool PredictsV(this GoldenModel model) => model == GoldenModel.Sd2v;

    public static IReadOnlyList<string> Runs(this GoldenModel model) => model switch
    {
        GoldenModel.Sdxl => new[] { "euler", "euler_ancestral", "heun", "dpmpp_2m", "dpmpp_2m_karras", "sgm_euler" },
        _ => new[] { "euler", "euler_ancestral", "heun", "dpm_2", "lms", "dpmpp_2m", "dpmpp_2m_karras", "euler_ancestral_karras", "ddim" },
    };
}
