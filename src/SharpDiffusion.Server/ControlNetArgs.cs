using System.Globalization;
using System.Text.Json;
using SharpDiffusion.Engine.ControlNet;

namespace SharpDiffusion.Server;

/// <summary>One sd-webui-controlnet unit of a request, validated: the model file and the control image still encoded.</summary>
/// <param name="Image">The control image (PNG/JPEG/WebP bytes); null on img2img: the init image, as the extension does.</param>
public sealed record ControlSpec(string ModelPath, byte[]? Image, string Module, ControlResizeMode ResizeMode, double Weight,
    double GuidanceStart, double GuidanceEnd, int ThresholdA, int ThresholdB);

/// <summary>
/// sd-webui-controlnet's API: <c>alwayson_scripts.controlnet.args</c>, a list of units (<c>external_code.ControlNetUnit</c>
/// fields: enabled, module, model, weight, image / input_image, resize_mode, guidance_start, guidance_end, processor_res,
/// threshold_a, threshold_b, control_mode, pixel_perfect). Models are looked up by title ("name [hash8]") or name in the
/// models folder's <c>ControlNet/</c> only; what the engine does not do (other preprocessors, control modes, Pixel
/// Perfect, another processor resolution) is a 422 naming <c>alwayson_scripts</c>, never silently dropped.
/// </summary>
public static class ControlNetArgs
{
    public const string Field = "alwayson_scripts";

    /// <summary>The preprocessors the engine runs, under the extension's names ("invert (from white bg &amp; black line)" too).</summary>
    public static readonly IReadOnlyList<string> Modules = ["none", "canny", "invert"];

    public static IReadOnlyList<ControlSpec> Parse(ServerContext server, RequestReader r, JsonElement? alwaysOn, bool img2img)
    {
        var specs = new List<ControlSpec>();
        if (alwaysOn is not { ValueKind: JsonValueKind.Object } scripts) return specs;
        // A1111 matches script names case-insensitively.
        var controlNet = scripts.EnumerateObject().FirstOrDefault(p => p.Name.Equals("controlnet", StringComparison.OrdinalIgnoreCase));
        if (controlNet.Value.ValueKind == JsonValueKind.Undefined) return specs;
        if (!controlNet.Value.TryGetProperty("args", out var args) || args.ValueKind != JsonValueKind.Array)
        {
            r.Invalid(Field, "controlnet: \"args\" must be a list of units");
            return specs;
        }
        int index = 0;
        foreach (var unit in args.EnumerateArray())
        {
            var where = $"controlnet unit {index++}";
            if (unit.ValueKind != JsonValueKind.Object)
            {
                r.Invalid(Field, $"{where}: an object is expected");
                continue;
            }
            if (!Bool(unit, "enabled", true)) continue;
            var model = Text(unit, "model");
            if (string.IsNullOrEmpty(model) || model == "None") continue; // the extension skips a unit without a model
            var path = server.Catalog.FindControlNet(model);
            if (path == null)
            {
                r.Invalid(Field, $"{where}: ControlNet model '{model}' not found in the models folder's ControlNet/");
                continue;
            }
            var module = (Text(unit, "module") ?? "none").Trim().ToLowerInvariant();
            if (module.StartsWith("invert", StringComparison.Ordinal)) module = "invert";
            if (!Modules.Contains(module))
                r.Unsupported(Field, $"{where}: preprocessor '{module}' is not supported ({string.Join(", ", Modules)})");

            byte[]? image = null;
            var imageField = unit.TryGetProperty("image", out var im) && im.ValueKind != JsonValueKind.Null ? im
                : unit.TryGetProperty("input_image", out var legacy) && legacy.ValueKind != JsonValueKind.Null ? legacy : (JsonElement?)null;
            // {"image": b64, "mask": b64} is the extension's dict form; its mask is not used here.
            if (imageField is { ValueKind: JsonValueKind.Object } dict && dict.TryGetProperty("image", out var inner)) imageField = inner;
            if (imageField is { ValueKind: JsonValueKind.String } b64)
            {
                if (!ServerContext.TryDecodeBase64Image(b64.GetString()!, out image!))
                    r.Invalid(Field, $"{where}: the image is not base64 image data (raw base64 or a data: URI; URLs are not fetched)");
            }
            else if (imageField != null)
            {
                r.Invalid(Field, $"{where}: the image must be a base64 string");
            }
            else if (!img2img)
            {
                r.Invalid(Field, $"{where}: txt2img needs a control image (\"image\")");
            }

            ControlResizeMode resize = ControlResizeMode.CropAndResize;
            if (unit.TryGetProperty("resize_mode", out var rm) && rm.ValueKind != JsonValueKind.Null)
            {
                try
                {
                    resize = ControlMapResize.Parse(rm.ValueKind == JsonValueKind.Number ? rm.GetRawText() : rm.GetString() ?? "");
                }
                catch (ArgumentException e)
                {
                    r.Invalid(Field, $"{where}: {e.Message}");
                }
            }
            if (Number(unit, "processor_res", -1) is var res and not (-1 or 512))
                r.Unsupported(Field, $"{where}: processor_res {res.ToString(CultureInfo.InvariantCulture)}: only 512 (the extension's default) is supported");
            if (Bool(unit, "pixel_perfect", false)) r.Unsupported(Field, $"{where}: pixel_perfect is not supported");
            var controlMode = unit.TryGetProperty("control_mode", out var cm) ? cm.ValueKind == JsonValueKind.Number ? cm.GetRawText() : cm.GetString() : null;
            if (controlMode is not (null or "0" or "Balanced"))
                r.Unsupported(Field, $"{where}: control_mode '{controlMode}' is not supported (Balanced)");

            double weight = Number(unit, "weight", 1.0), start = Number(unit, "guidance_start", 0.0), end = Number(unit, "guidance_end", 1.0);
            if (start < 0 || end > 1 || start > end) r.Invalid(Field, $"{where}: guidance_start and guidance_end must satisfy 0 <= start <= end <= 1");
            // -1 is the extension's "default" for the slider values.
            int low = (int)Number(unit, "threshold_a", -1), high = (int)Number(unit, "threshold_b", -1);
            specs.Add(new ControlSpec(path, image, module, resize, weight, start, end,
                low < 0 ? ControlPreprocessors.DefaultCannyLow : low, high < 0 ? ControlPreprocessors.DefaultCannyHigh : high));
        }
        return specs;
    }

    private static string? Text(JsonElement unit, string name) =>
        unit.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static bool Bool(JsonElement unit, string name, bool fallback) =>
        unit.TryGetProperty(name, out var v) ? v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => fallback,
        } : fallback;

    private static double Number(JsonElement unit, string name, double fallback) =>
        unit.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble()
        : unit.TryGetProperty(name, out v) && v.ValueKind == JsonValueKind.String && double.TryParse(v.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var d) ? d
        : fallback;
}
