namespace SharpDiffusion.Workshop;

/// <summary>Key rules of A1111's checkpoint merger (modules/extras.py, sd_models.py), shared by the workshop tools.</summary>
public static class CheckpointKeys
{
    /// <summary>A1111's <c>checkpoint_dict_skip_on_merge</c>: integer ids that must stay A's.</summary>
    public static readonly IReadOnlySet<string> SkipOnMerge = new HashSet<string>(StringComparer.Ordinal)
    {
        "cond_stage_model.transformer.text_model.embeddings.position_ids",
    };

    public const string VaePrefix = "first_stage_model.";
    public const string EmaPrefix = "model_ema.";
    public const string UnetPrefix = "model.diffusion_model.";

    /// <summary>
    /// A1111 merges a key only when its name contains "model" (U-Net, VAE, text encoder, EMA): DDPM buffers such as
    /// <c>betas</c> and <c>alphas_cumprod</c> stay A's, and so do the skip-on-merge ids.
    /// </summary>
    public static bool IsMergeable(string key) => key.Contains("model", StringComparison.Ordinal) && !SkipOnMerge.Contains(key);

    /// <summary>Training leftovers that --prune drops: EMA copies, loss-module tensors, optimizer state.</summary>
    public static bool IsTrainingOnly(string key) =>
        key.StartsWith(EmaPrefix, StringComparison.Ordinal) || key.StartsWith("loss.", StringComparison.Ordinal)
        || key.StartsWith("optimizer", StringComparison.Ordinal);

    /// <summary>
    /// The LitEma buffer name holding the EMA copy of a <c>model.*</c> parameter: <c>model_ema.</c> plus the name
    /// without its <c>model.</c> prefix and without dots (LDM's LitEma cannot register dotted buffer names), e.g.
    /// <c>model.diffusion_model.input_blocks.0.0.weight</c> -> <c>model_ema.diffusion_modelinput_blocks00weight</c>.
    /// Null for keys outside <c>model.</c>.
    /// </summary>
    public static string? EmaKeyFor(string key) =>
        key.StartsWith("model.", StringComparison.Ordinal) ? EmaPrefix + key["model.".Length..].Replace(".", "", StringComparison.Ordinal) : null;

    /// <summary>LitEma's bookkeeping scalars, not weights.</summary>
    public static bool IsEmaBookkeeping(string key) => key is "model_ema.decay" or "model_ema.num_updates";
}
