namespace SharpDiffusion.Workshop;

/// <summary>
/// Tells single-file checkpoint families apart from their key layout (the text encoder's wrapper differs between
/// SD1, SD2 and SDXL), so a merge across families is refused with a clear message before anything is written.
/// </summary>
public static class CheckpointFamily
{
    /// <summary>"SD1", "SD2", "SDXL", "SDXL refiner", or null when the layout says nothing.</summary>
    public static string? Detect(IEnumerable<string> keys)
    {
        bool sd1Clip = false, openClip = false, xlClipL = false, xlOpenClip = false;
        foreach (var key in keys)
        {
            if (key.StartsWith("cond_stage_model.transformer.", StringComparison.Ordinal)) sd1Clip = true;
            else if (key.StartsWith("cond_stage_model.model.", StringComparison.Ordinal)) openClip = true;
            else if (key.StartsWith("conditioner.embedders.0.transformer.", StringComparison.Ordinal)) xlClipL = true;
            else if (key.StartsWith("conditioner.embedders.1.model.", StringComparison.Ordinal)
                     || key.StartsWith("conditioner.embedders.0.model.", StringComparison.Ordinal)) xlOpenClip = true;
        }
        if (xlClipL && xlOpenClip) return "SDXL";
        if (xlOpenClip) return "SDXL refiner";
        if (openClip) return "SD2";
        if (sd1Clip) return "SD1";
        return null;
    }
}
