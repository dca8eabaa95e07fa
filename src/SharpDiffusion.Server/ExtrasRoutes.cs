using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using SharpDiffusion.Engine.Upscaling;
using SharpDiffusion.Formats;
using SharpDiffusion.Png;

namespace SharpDiffusion.Server;

/// <summary>
/// A1111's <c>/sdapi/v1/extra-single-image</c> (ExtrasSingleImageRequest -> {html_info, image}): the upscale step of the
/// Extras tab through the engine's <see cref="ExtrasUpscale"/>, with the models folder's ESRGAN files as upscalers.
/// It runs beside the generation queue (its own model, loaded per request), as A1111 runs extras outside the job lock.
/// </summary>
internal static class ExtrasRoutes
{
    public static void Map(IEndpointRouteBuilder api, ServerContext server)
    {
        api.MapPost("/extra-single-image", async (HttpRequest request, CancellationToken cancel) =>
        {
            var body = await ServerContext.ReadJsonAsync(request);
            if (body.Error != null) return body.Error;
            var r = new RequestReader(body.Json);
            if (body.Json.ValueKind != JsonValueKind.Object)
            {
                r.Invalid("body", "an object is expected");
                return ServerContext.Unprocessable(r.Errors);
            }
            int mode = r.Int("resize_mode", 0, 0, 1);
            double scaleBy = r.Double("upscaling_resize", 2, 0.01, 8);
            int toWidth = r.Int("upscaling_resize_w", 512, 1, 16384);
            int toHeight = r.Int("upscaling_resize_h", 512, 1, 16384);
            bool crop = r.Bool("upscaling_crop", true);
            var name1 = r.String("upscaler_1", "None");
            var name2 = r.String("upscaler_2", "None");
            double visibility = r.Double("extras_upscaler_2_visibility", 0, 0, 1);
            foreach (var face in new[] { "gfpgan_visibility", "codeformer_visibility" })
                if (r.Double(face, 0, 0, 1) > 0) r.Unsupported(face, "face restoration is not supported (no face restorers: see /sdapi/v1/face-restorers)");
            var imageText = r.NullableString("image");
            byte[] encoded = [];
            if (imageText is not { Length: > 0 }) r.Invalid("image", "field required");
            else if (!ServerContext.TryDecodeBase64Image(imageText, out encoded)) r.Invalid("image", "not base64 image data (raw base64 or a data: URI; URLs are not fetched)");
            string? path1 = Resolve(server, r, "upscaler_1", name1), path2 = Resolve(server, r, "upscaler_2", name2);
            // The output size is known before any work: refuse what the generation routes would refuse.
            if (r.Errors.Count == 0)
            {
                double scale = mode == 1 ? 0 : scaleBy;
                long pixels = mode == 1 ? (long)toWidth * toHeight : 0;
                if (mode == 0 && TryReadSize(encoded, out var w, out var h)) pixels = (long)(w * scale) * (long)(h * scale);
                if (pixels > server.Options.MaxPixels) r.Invalid(mode == 1 ? "upscaling_resize_w" : "upscaling_resize", $"the result must be at most {server.Options.MaxPixels} pixels");
            }
            if (r.Errors.Count > 0) return ServerContext.Unprocessable(r.Errors);

            try
            {
                var (png, info) = await Task.Run(() => Upscale(encoded, new ExtrasUpscaleRequest
                {
                    ScaleTo = mode == 1, ScaleBy = scaleBy, ToWidth = toWidth, ToHeight = toHeight, Crop = crop, Upscaler2Visibility = visibility,
                }, (name1, path1), (name2, path2)), cancel);
                return Results.Json(new Dictionary<string, object?> { ["html_info"] = PlaintextToHtml(info), ["image"] = Convert.ToBase64String(png) });
            }
            catch (Exception e) when (e is InvalidDataException or ArgumentException or InvalidModelFileException)
            {
                return ServerContext.Unprocessable([new ValidationError(["body", "image"], e.Message, "value_error")]);
            }
        });
    }

    /// <summary>"None" is no upscaler; Lanczos/Nearest are built in; any other name is an ESRGAN file of the models folder.</summary>
    private static string? Resolve(ServerContext server, RequestReader r, string field, string name)
    {
        if (name is "None" or "Lanczos" or "Nearest") return null;
        var path = server.Catalog.Upscalers().FirstOrDefault(u => u.Name == name)?.Path;
        if (path == null) r.Invalid(field, $"upscaler '{name}' not found (see /sdapi/v1/upscalers)");
        return path;
    }

    private static (byte[] Png, string Info) Upscale(byte[] encoded, ExtrasUpscaleRequest request, (string Name, string? Path) first, (string Name, string? Path) second)
    {
        var temp = Path.Combine(Path.GetTempPath(), "sdserve-extras-" + Guid.NewGuid().ToString("N"));
        RgbImage image;
        try
        {
            File.WriteAllBytes(temp, encoded);
            image = ImageFileReader.LoadRgb(temp);
        }
        catch (InvalidDataException)
        {
            throw new InvalidDataException("the image is not one SkiaSharp can decode (PNG, JPEG, WebP, ...)");
        }
        finally
        {
            File.Delete(temp);
        }
        using var model1 = first.Path == null ? null : UpscalerModel.Load(first.Path);
        using var model2 = second.Path == null || request.Upscaler2Visibility <= 0 ? null : UpscalerModel.Load(second.Path);
        request = request with
        {
            Upscaler1 = first.Name == "None" ? null : new ExtrasUpscaler(first.Name, model1),
            Upscaler2 = second.Name == "None" ? null : new ExtrasUpscaler(second.Name, model2),
        };
        var fields = new List<KeyValuePair<string, string>>();
        var result = ExtrasUpscale.Run(image, request, fields);
        // A1111 joins pp.info as "key: value, ..." and keeps the source PNG's text (its parameters) beside "postprocessing".
        var info = string.Join(", ", fields.Select(f => $"{f.Key}: {f.Value}"));
        var texts = new List<KeyValuePair<string, string>>();
        try
        {
            texts.AddRange(PngTextChunks.Read(encoded).Where(t => t.Keyword != "postprocessing").Select(t => new KeyValuePair<string, string>(t.Keyword, t.Text)));
        }
        catch (PngFormatException)
        {
            // Not a PNG (JPEG, WebP): no text to keep.
        }
        if (info.Length > 0) texts.Add(new("postprocessing", info));
        return (PngEncoder.Encode(result.Pixels, result.Width, result.Height, texts), info);
    }

    /// <summary>The size from a PNG header, for the limit check (other formats are checked after decoding).</summary>
    private static bool TryReadSize(byte[] data, out int width, out int height)
    {
        (width, height) = (0, 0);
        if (data.Length < 24 || data[0] != 0x89 || data[1] != (byte)'P') return false;
        width = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(16));
        height = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(20));
        return width > 0 && height > 0;
    }

    /// <summary>A1111's ui_common.plaintext_to_html: each line HTML-escaped, joined by &lt;br&gt;, in one paragraph.</summary>
    private static string PlaintextToHtml(string text) =>
        "<p>" + string.Join("<br>\n", text.Split('\n').Select(line => System.Net.WebUtility.HtmlEncode(line))) + "</p>";
}
