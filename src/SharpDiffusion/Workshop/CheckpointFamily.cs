using SharpDiffusion.Formats;
using SharpDiffusion.Inspection;

namespace SharpDiffusion.Workshop;

/// <summary>
/// The family of a checkpoint as the workshop names it in messages, taken from the classifier's verdict
/// (<see cref="ModelClassifier"/>: U-Net layout, text encoder widths, context dimensions), so a merge across families
/// is refused with a clear message before anything is written, by the same rules <c>inspect</c> reports.
/// </summary>
public static class CheckpointFamily
{
    /// <summary>"SD1", "SD2", "SDXL", "SDXL refiner", "SD3", "Flux", or null when the classifier names no family.</summary>
    public static string? Detect(IModelFile file) => Name(ModelClassifier.Classify(file).Base);

    /// <summary>The workshop's name for a classifier family; null for none.</summary>
    public static string? Name(BaseFamily? family) => family switch
    {
        BaseFamily.SD1 => "SD1",
        BaseFamily.SD2 => "SD2",
        BaseFamily.SDXL => "SDXL",
        BaseFamily.SDXLRefiner => "SDXL refiner",
        BaseFamily.SD3 => "SD3",
        BaseFamily.Flux => "Flux",
        _ => null,
    };
}
