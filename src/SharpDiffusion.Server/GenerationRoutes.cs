using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using SharpDiffusion.Engine.Generation;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Png;

namespace SharpDiffusion.Server;

/// <summary>
/// A1111's <c>txt2img</c>/<c>img2img</c> (wait for the image) and the job API beyond it: <c>POST /v2/jobs</c> answers
/// an id at once, <c>GET /v2/jobs/{id}</c> reports that job's progress and result, <c>DELETE</c> cancels that job only.
/// </summary>
internal static class GenerationRoutes
{
    public const string Version = "sharpdiffusion";

    public static void Map(IEndpointRouteBuilder app, ServerContext server)
    {
        app.MapPost("/sdapi/v1/txt2img", (HttpRequest request) => RunAsync(server, request, "txt2img"));
        app.MapPost("/sdapi/v1/img2img", (HttpRequest request) => RunAsync(server, request, "img2img"));

        app.MapPost("/v2/jobs", async (HttpRequest request) =>
        {
            var body = await ServerContext.ReadJsonAsync(request);
            if (body.Error != null) return body.Error;
            var kind = body.Json.ValueKind == JsonValueKind.Object && body.Json.TryGetProperty("init_images", out var init) && init.ValueKind == JsonValueKind.Array
                ? "img2img" : "txt2img";
            var (job, error) = await EnqueueAsync(server, body.Json, kind, keepFiles: true);
            return error ?? Results.Json(new { id = job!.Id, state = Name(job.State) }, statusCode: 202);
        });
        app.MapGet("/v2/jobs/{id}", async (string id) => await server.Queue.FindAsync(id) is { } job ? Results.Json(Describe(server, job)) : NotFound(id));
        // A job's images from the outputs folder; the path is built from a known job id and a number, never from text.
        app.MapGet("/v2/jobs/{id}/images/{index:int}", async (string id, int index) =>
        {
            if (await server.Queue.FindAsync(id) is not { State: JobState.Done } job || index < 0 || index >= job.Pngs.Count) return NotFound(id);
            var path = JobImagePath(server, job.Id, index);
            return File.Exists(path) ? Results.File(path, "image/png") : NotFound(id);
        });
        app.MapGet("/v2/jobs/{id}/events", async (string id, HttpContext context) => await server.Queue.FindAsync(id) is { } job ? StreamAsync(server, job, context) : NotFound(id));
        app.MapDelete("/v2/jobs/{id}", async (string id) =>
            await server.Queue.CancelAsync(id) && await server.Queue.FindAsync(id) is { } job ? Results.Json(Describe(server, job)) : NotFound(id));
    }

    private static async Task<IResult> RunAsync(ServerContext server, HttpRequest request, string kind)
    {
        var body = await ServerContext.ReadJsonAsync(request);
        if (body.Error != null) return body.Error;
        var (job, error) = await EnqueueAsync(server, body.Json, kind);
        if (error != null) return error;
        await job!.Finished;
        return job.State == JobState.Failed ? Failure(job.Error!) : Results.Json(job.Response);
    }

    private static async Task<(ServerJob? Job, IResult? Error)> EnqueueAsync(ServerContext server, JsonElement body, string kind, bool keepFiles = false)
    {
        var (parsed, errors) = Parse(server, body, kind);
        if (parsed == null) return (null, ServerContext.Unprocessable(errors));
        var job = CreateJob(server, kind, parsed, keepFiles);
        if (!await server.Queue.TryEnqueueAsync(job, body))
        {
            return (null, new QueueFull(server.Options.MaxQueuedJobs));
        }
        return (job, null);
    }

    /// <summary>The one way a job is made: its response built from its result, a /v2 job's images kept in the outputs folder.</summary>
    internal static ServerJob CreateJob(ServerContext server, string kind, ParsedRequest parsed, bool keepFiles, string? id = null) =>
        new(kind, parsed.Job, (_, result) => Respond(server, parsed, result, kind),
            keepFiles ? job => KeepJobImages(server, job.Id, job.Pngs) : null, id);

    /// <summary>A valid request: the job, the subseed reported in info (variation seeds are not applied), the echo, save/send flags.</summary>
    internal sealed record ParsedRequest(ImageJob Job, long Subseed, Dictionary<string, object?> Echo, bool SaveImages, bool SendImages);

    /// <summary>Reads A1111's request fields (StableDiffusionProcessingTxt2Img/Img2Img with the API's defaults).</summary>
    internal static (ParsedRequest? Request, List<ValidationError> Errors) Parse(ServerContext server, JsonElement body, string kind)
    {
        var r = new RequestReader(body);
        if (body.ValueKind != JsonValueKind.Object)
        {
            r.Invalid("body", "an object is expected");
            return (null, r.Errors);
        }
        var options = server.Options;
        var overrides = r.Raw("override_settings");
        string? OverrideString(string key) => overrides is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

        var prompt = r.String("prompt", "");
        var negative = r.String("negative_prompt", "");
        long seed = r.Long("seed", -1);
        long subseed = r.Long("subseed", -1);
        double subseedStrength = r.Double("subseed_strength", 0, 0, 1);
        if (subseedStrength != 0) r.Unsupported("subseed_strength", "variation seeds are not supported yet");
        int width = r.Int("width", 512, 8, 16384);
        int height = r.Int("height", 512, 8, 16384);
        if ((long)width * height > options.MaxPixels) r.Invalid("width", $"width x height must be at most {options.MaxPixels} pixels");
        if (width % 8 != 0) r.Invalid("width", "must be a multiple of 8");
        if (height % 8 != 0) r.Invalid("height", "must be a multiple of 8");
        int steps = r.Int("steps", 50, 1, options.MaxSteps);
        double cfg = r.Double("cfg_scale", 7.0, 0, 100);
        int batchSize = r.Int("batch_size", 1, 1, options.MaxImagesPerRequest);
        int iterations = r.Int("n_iter", 1, 1, options.MaxImagesPerRequest);
        if (batchSize * iterations > options.MaxImagesPerRequest) r.Invalid("n_iter", $"batch_size x n_iter must be at most {options.MaxImagesPerRequest}");

        // A1111: sampler_name, else sampler_index (default "Euler"); a legacy "X Karras" name carries its schedule.
        var samplerText = r.NullableString("sampler_name") ?? r.String("sampler_index", "Euler");
        var scheduler = r.NullableString("scheduler");
        string samplerName = "Euler";
        string schedule = "Automatic";
        try
        {
            var (sampler, implied) = SamplerRegistry.Resolve(samplerText);
            samplerName = sampler.Name;
            if (implied == ScheduleType.Karras) schedule = "Karras";
        }
        catch (ArgumentException e)
        {
            r.Invalid(r.Has("sampler_name") ? "sampler_name" : "sampler_index", e.Message);
        }
        if (scheduler != null && !scheduler.Equals("automatic", StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                schedule = ScheduleTypes.Label(ScheduleTypes.Parse(scheduler));
            }
            catch (ArgumentException e)
            {
                r.Invalid("scheduler", e.Message);
            }
        }

        int clipSkip = server.Settings.ClipStopAtLastLayers;
        if (overrides is { ValueKind: JsonValueKind.Object } ov && ov.TryGetProperty("CLIP_stop_at_last_layers", out var cs) && cs.TryGetInt32(out var skip) && skip is >= 1 and <= 12)
            clipSkip = skip;
        var checkpoint = server.Settings.Checkpoint;
        if (OverrideString("sd_model_checkpoint") is { } wantedModel)
        {
            checkpoint = server.Catalog.FindCheckpoint(wantedModel);
            if (checkpoint == null) r.Invalid("override_settings", $"model '{wantedModel}' not found");
        }
        else if (checkpoint == null) r.Invalid("sd_model_checkpoint", $"no checkpoint in {server.Catalog.Folder.CheckpointsFolder}");
        string? vaePath = server.Settings.VaePath();
        if (OverrideString("sd_vae") is { } wantedVae)
        {
            if (wantedVae is not ("Automatic" or "None") && !server.Catalog.Vaes().ContainsKey(wantedVae)) r.Invalid("override_settings", $"VAE '{wantedVae}' not found");
            vaePath = server.Settings.VaePath(wantedVae);
        }

        var hires = kind == "txt2img" ? ParseHires(server, r, samplerName, schedule, prompt, negative, width, height) : null;
        if (r.Bool("tiling", false)) r.Unsupported("tiling", "tiling is not supported yet");
        if (r.NullableString("script_name") is { Length: > 0 }) r.Unsupported("script_name", "scripts are not supported");
        // A1111's refiner: a checkpoint title or name from the models folder (never a path), "None" or empty for none.
        CheckpointEntry? refiner = null;
        double refinerSwitchAt = 0.8; // the UI's default when the request leaves it out
        if (r.NullableString("refiner_checkpoint") is { Length: > 0 } refinerName && refinerName != "None")
        {
            refiner = server.Catalog.FindCheckpoint(refinerName);
            if (refiner == null) r.Invalid("refiner_checkpoint", $"model '{refinerName}' not found");
            if (r.Has("refiner_switch_at") && r.Raw("refiner_switch_at") is { ValueKind: not JsonValueKind.Null })
                refinerSwitchAt = r.Double("refiner_switch_at", 0.8, 0.01, 1);
        }
        var control = ControlNetArgs.Parse(server, r, r.Raw(ControlNetArgs.Field), img2img: kind == "img2img");
        bool save = r.Bool("save_images", false);
        bool send = r.Bool("send_images", true);
        // A1111's default eta (1) is what the engine's ancestral samplers use; another value would be silently ignored.
        if (r.Has("eta") && r.Double("eta", 1.0, 0, 1) != 1.0) r.Unsupported("eta", "only eta 1 (A1111's default) is supported yet");

        byte[]? init = null;
        int resizeMode = 0;
        MaskSettings? mask = null;
        double strength = 0.75;
        if (kind == "img2img")
        {
            strength = r.Double("denoising_strength", 0.75, 0, 1);
            resizeMode = r.Int("resize_mode", 0, 0, 3);
            mask = ParseMask(r);
            if (resizeMode == 3 && mask != null) r.Unsupported("resize_mode", "3 (just resize, latent upscale) with a mask is not supported yet; 0, 1 and 2 are");
            var images = r.Raw("init_images");
            if (images is not { ValueKind: JsonValueKind.Array } array || array.GetArrayLength() == 0)
                r.Invalid("init_images", "at least one base64 image is required");
            else if (array[0].ValueKind != JsonValueKind.String || !ServerContext.TryDecodeBase64Image(array[0].GetString()!, out init))
                r.Invalid("init_images", "not base64 image data (raw base64 or a data: URI; URLs are not fetched)");
            r.Echo["init_images"] = r.Bool("include_init_images", false) ? images?.Clone() : null;
        }

        if (seed == -1) seed = Random.Shared.NextInt64(0, uint.MaxValue);
        if (subseed == -1) subseed = Random.Shared.NextInt64(0, uint.MaxValue);
        var echo = Defaults(kind);
        foreach (var (key, value) in r.Echo) echo[key] = value;
        // Fields this server does not read are echoed as given (A1111 echoes every field of its request model).
        foreach (var property in body.EnumerateObject())
            if (echo.ContainsKey(property.Name) && !r.Echo.ContainsKey(property.Name)) echo[property.Name] = property.Value.Clone();
        if (r.Errors.Count > 0) return (null, r.Errors);

        var job = new ImageJob
        {
            Checkpoint = checkpoint!,
            VaePath = vaePath,
            Prompt = prompt,
            NegativePrompt = negative,
            Steps = steps,
            SamplerName = samplerName,
            Scheduler = schedule,
            CfgScale = cfg,
            Seed = seed,
            Width = width,
            Height = height,
            BatchSize = batchSize,
            Iterations = iterations,
            ClipSkip = clipSkip,
            InitImage = init,
            ResizeMode = (Engine.Pipeline.InitResizeMode)resizeMode,
            DenoisingStrength = strength,
            Refiner = refiner,
            RefinerSwitchAt = refinerSwitchAt,
            Control = control,
        };
        if (hires != null) job = hires(job);
        if (mask != null)
        {
            job = job with
            {
                Mask = mask.Image, MaskBlur = mask.BlurX, MaskBlurY = mask.BlurY == mask.BlurX ? null : mask.BlurY, MaskInvert = mask.Invert, InpaintFill = mask.Fill,
                InpaintFullRes = mask.FullRes, InpaintFullResPadding = mask.Padding,
            };
        }
        return (new ParsedRequest(job, subseed, echo, save, send), r.Errors);
    }

    /// <summary>
    /// txt2img's hires. fix fields (A1111's StableDiffusionProcessingTxt2Img): null when <c>enable_hr</c> is off, else
    /// what to set on the job. Second-pass settings the engine cannot vary (another sampler, prompt or checkpoint) are
    /// accepted only when they are the first pass's, and refused otherwise.
    /// </summary>
    private static Func<ImageJob, ImageJob>? ParseHires(ServerContext server, RequestReader r, string sampler, string schedule,
        string prompt, string negative, int width, int height)
    {
        // Read whether or not enable_hr is on, so that a bad value is a 422 and every field is echoed as A1111 does.
        bool enabled = r.Bool("enable_hr", false);
        double scale = r.Double("hr_scale", 2.0, 1, 8);
        var upscalerName = r.String("hr_upscaler", "Latent");
        int secondPassSteps = r.Int("hr_second_pass_steps", 0, 0, server.Options.MaxSteps);
        int resizeX = r.Int("hr_resize_x", 0, 0, 16384);
        int resizeY = r.Int("hr_resize_y", 0, 0, 16384);
        double denoise = r.Double("denoising_strength", 0.75, 0, 1);
        var hrSampler = r.NullableString("hr_sampler_name");
        var hrScheduler = r.NullableString("hr_scheduler");
        var hrPrompt = r.String("hr_prompt", "");
        var hrNegative = r.String("hr_negative_prompt", "");
        var hrCheckpoint = r.NullableString("hr_checkpoint_name");
        if (!enabled) return null;

        // hr_resize_x/y replace hr_scale (A1111's calculate_target_resolution; another aspect ratio is cropped).
        (int Width, int Height)? resize = resizeX != 0 || resizeY != 0 ? (resizeX, resizeY) : null;
        var size = new Engine.Pipeline.GenerationRequest { Width = width, Height = height, HiresScale = scale, HiresResize = resize }.HiresSize(8);
        string sizeField = resize != null ? (resizeX != 0 ? "hr_resize_x" : "hr_resize_y") : "hr_scale";
        if (size.Width <= width && size.Height <= height) r.Invalid(sizeField, "the hires. fix size must be larger than the first pass's");
        var (hiresWidth, hiresHeight) = ((long)size.Width, (long)size.Height);
        if (hiresWidth * hiresHeight > server.Options.MaxPixels) r.Invalid(sizeField, $"the hires. fix size {hiresWidth}x{hiresHeight} is above {server.Options.MaxPixels} pixels");
        if (hiresWidth % 8 != 0 || hiresHeight % 8 != 0) r.Invalid(sizeField, $"the hires. fix size {hiresWidth}x{hiresHeight} must be a multiple of 8 both ways");
        if (denoise <= 0) r.Invalid("denoising_strength", "the hires. fix needs a denoising strength above 0");

        string? upscalerPath = null;
        if (!Engine.Pipeline.GenerationRequest.BuiltInHiresUpscalers.Contains(upscalerName))
        {
            upscalerPath = server.Catalog.Upscalers().FirstOrDefault(u => u.Name == upscalerName)?.Path;
            if (upscalerPath == null)
                r.Invalid("hr_upscaler", upscalerName.StartsWith("Latent", StringComparison.Ordinal)
                    ? $"latent mode '{upscalerName}' is not supported yet (see /sdapi/v1/latent-upscale-modes)"
                    : $"upscaler '{upscalerName}' not found (see /sdapi/v1/upscalers)");
        }
        // A1111: "Use same sampler" / "Use same scheduler" (or nothing) keep the first pass's.
        string? hiresSampler = null, hiresScheduler = null;
        if (hrSampler is { Length: > 0 } && hrSampler != "Use same sampler")
        {
            try
            {
                var (resolved, implied) = SamplerRegistry.Resolve(hrSampler);
                hiresSampler = resolved.Name;
                if (implied is { } impliedSchedule) hiresScheduler = ScheduleTypes.Label(impliedSchedule);
            }
            catch (ArgumentException e)
            {
                r.Invalid("hr_sampler_name", e.Message);
            }
        }
        if (hrScheduler is { Length: > 0 } && hrScheduler != "Use same scheduler")
        {
            try
            {
                hiresScheduler = ScheduleTypes.Label(ScheduleTypes.Parse(hrScheduler));
            }
            catch (ArgumentException e)
            {
                r.Invalid("hr_scheduler", e.Message);
            }
        }
        // A1111: an empty hr_prompt is the prompt; one with other extra networks than the prompt's is refused.
        string? hiresPrompt = hrPrompt.Length > 0 && hrPrompt != prompt ? hrPrompt : null;
        string? hiresNegative = hrNegative.Length > 0 && hrNegative != negative ? hrNegative : null;
        if (hiresPrompt != null && !Engine.ExtraNetworks.ExtraNetworkPrompt.Extract(hiresPrompt).UsesSameNetworksAs(Engine.ExtraNetworks.ExtraNetworkPrompt.Extract(prompt)))
            r.Unsupported("hr_prompt", "a second-pass prompt with other extra networks than the prompt's is not supported yet");
        if (hrCheckpoint is { Length: > 0 } && hrCheckpoint != "Use same checkpoint") r.Unsupported("hr_checkpoint_name", "a second-pass checkpoint is not supported yet");

        return job => job with
        {
            HiresScale = scale,
            HiresResize = resize,
            HiresUpscaler = upscalerName,
            HiresUpscalerPath = upscalerPath,
            HiresSteps = secondPassSteps == 0 ? null : secondPassSteps,
            HiresDenoise = denoise,
            HiresSampler = hiresSampler,
            HiresScheduler = hiresScheduler,
            HiresPrompt = hiresPrompt,
            HiresNegativePrompt = hiresNegative,
        };
    }

    private sealed record MaskSettings(byte[] Image, double BlurX, double BlurY, bool Invert, Engine.Pipeline.InpaintFill Fill, bool FullRes, int Padding);

    /// <summary>img2img's inpainting fields with A1111's API defaults (fill 0, only masked on, padding 0, blur 4); null without a mask.</summary>
    private static MaskSettings? ParseMask(RequestReader r)
    {
        var maskText = r.NullableString("mask");
        int blurX = r.Int("mask_blur_x", 4, 0, 256);
        int blurY = r.Int("mask_blur_y", 4, 0, 256);
        // A1111: mask_blur, when given, sets both directions.
        if (r.Has("mask_blur")) blurX = blurY = r.Int("mask_blur", 4, 0, 256);
        int fill = r.Int("inpainting_fill", 0, 0, 3);
        bool fullRes = r.Bool("inpaint_full_res", true);
        int padding = r.Int("inpaint_full_res_padding", 0, 0, 1024);
        int invert = r.Int("inpainting_mask_invert", 0, 0, 1);
        bool round = r.Bool("mask_round", true);
        // A1111's default noise multiplier (1) is what the engine does; another value would be silently ignored.
        if (r.Has("initial_noise_multiplier") && r.Double("initial_noise_multiplier", 1, 0, 10) != 1)
            r.Unsupported("initial_noise_multiplier", "only 1 (A1111's default) is supported yet");
        if (maskText == null) return null;
        if (!round) r.Unsupported("mask_round", "only the rounded latent mask (A1111's default) is supported yet");
        if (!ServerContext.TryDecodeBase64Image(maskText, out var mask))
        {
            r.Invalid("mask", "not base64 image data (raw base64 or a data: URI; URLs are not fetched)");
            return null;
        }
        return new MaskSettings(mask, blurX, blurY, invert == 1, (Engine.Pipeline.InpaintFill)fill, fullRes, padding);
    }

    /// <summary>A1111's response: images (base64 PNGs with their parameters), the request echoed, info as a JSON string.</summary>
    internal static JobResponse Respond(ServerContext server, ParsedRequest request, ImageJobResult result, string kind)
    {
        var (job, subseed, echo, save, send) = request;
        var pngs = result.Images.Select(image => PngEncoder.Encode(image.Rgb, image.Width, image.Height,
            [new KeyValuePair<string, string>(A1111Infotext.PngKeyword, image.Infotext)])).ToList();
        if (save) SaveImages(server, kind, result, pngs);
        int count = job.BatchSize * job.Iterations;
        var hashes = server.Catalog.CachedHashes(job.Checkpoint.FullPath);
        var info = new Dictionary<string, object?>
        {
            ["prompt"] = job.Prompt,
            ["all_prompts"] = Enumerable.Repeat(job.Prompt, count).ToList(),
            ["negative_prompt"] = job.NegativePrompt,
            ["all_negative_prompts"] = Enumerable.Repeat(job.NegativePrompt, count).ToList(),
            ["seed"] = job.Seed,
            ["all_seeds"] = Enumerable.Range(0, count).Select(i => job.Seed + i).ToList(),
            ["subseed"] = subseed,
            ["all_subseeds"] = Enumerable.Range(0, count).Select(i => subseed + i).ToList(),
            ["subseed_strength"] = 0,
            ["width"] = job.Width,
            ["height"] = job.Height,
            ["sampler_name"] = job.SamplerName,
            ["cfg_scale"] = job.CfgScale,
            ["steps"] = job.Steps,
            ["batch_size"] = job.BatchSize,
            ["restore_faces"] = false,
            ["face_restoration_model"] = null,
            ["sd_model_name"] = Path.GetFileNameWithoutExtension(job.Checkpoint.FullPath),
            ["sd_model_hash"] = hashes?.Short,
            ["sd_vae_name"] = job.VaePath == null ? null : Path.GetFileNameWithoutExtension(job.VaePath),
            ["sd_vae_hash"] = job.VaePath == null ? null : server.Catalog.CachedHashes(job.VaePath)?.Short,
            ["seed_resize_from_w"] = -1,
            ["seed_resize_from_h"] = -1,
            ["denoising_strength"] = kind == "img2img" ? job.DenoisingStrength : job.HiresScale != null ? job.HiresDenoise : null,
            ["extra_generation_params"] = ExtraGenerationParams(job, result.Images.FirstOrDefault()?.Infotext),
            ["index_of_first_image"] = 0,
            ["infotexts"] = result.Images.Select(i => i.Infotext).ToList(),
            ["styles"] = new List<string>(),
            ["job_timestamp"] = DateTime.Now.ToString("yyyyMMddHHmmss", CultureInfo.InvariantCulture),
            ["clip_skip"] = job.ClipSkip,
            ["is_using_inpainting_conditioning"] = false,
            ["enable_hr"] = job.HiresScale != null,
            ["version"] = Version,
        };
        if (result.Warnings.Count > 0) info["warnings"] = result.Warnings;
        return new JobResponse(new Dictionary<string, object?>
        {
            ["images"] = send ? pngs.Select(Convert.ToBase64String).ToList() : [],
            ["parameters"] = echo,
            ["info"] = JsonSerializer.Serialize(info),
        }, pngs);
    }

    /// <summary>
    /// A1111's <c>extra_generation_params</c>: the schedule type, then the hires. fix and inpainting fields of the
    /// engine's infotext builder (the PNG's parameters), on the request as the engine normalises it, numbers as numbers.
    /// </summary>
    private static Dictionary<string, object?> ExtraGenerationParams(ImageJob job, string? infotext)
    {
        var request = GenerationService.Normalize(job.ToGenerationRequest());
        var extra = new Dictionary<string, object?> { ["Schedule type"] = job.Scheduler };
        foreach (var (key, value) in GenerationInfotext.HiresFields(request)) extra[key] = value;
        if (job.Mask != null)
            foreach (var (key, value) in GenerationInfotext.MaskFields(request)) extra[key] = value;
        var written = infotext == null ? null : A1111Infotext.Parse(infotext);
        // ControlNet's unit fields, as the engine wrote them into the image's parameters.
        for (int i = 0; i < job.Control.Count; i++)
            if (written?[$"ControlNet {i}"] is { } unit) extra[$"ControlNet {i}"] = unit;
        // The refiner's fields exist only when it took over, which the image's parameters tell.
        if (job.Refiner != null && written?["Refiner"] is { } refinerTitle)
        {
            extra["Refiner"] = refinerTitle;
            extra["Refiner switch at"] = job.RefinerSwitchAt;
        }
        return extra;
    }

    private static string JobImagePath(ServerContext server, string id, int index) => Path.Combine(server.Options.OutputsDir, "jobs", id, $"{index}.png");

    /// <summary>A /v2 job's images, kept in the outputs folder so that they can be fetched by URL after the job.</summary>
    private static void KeepJobImages(ServerContext server, string id, IReadOnlyList<byte[]> pngs)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(JobImagePath(server, id, 0))!);
        for (int i = 0; i < pngs.Count; i++) WriteAtomically(JobImagePath(server, id, i), pngs[i]);
    }

    /// <summary>Written under a temporary name, then renamed: a reader never sees half a PNG.</summary>
    private static void WriteAtomically(string path, byte[] bytes)
    {
        var temp = path + ".tmp";
        File.WriteAllBytes(temp, bytes);
        File.Move(temp, path, overwrite: true);
    }

    private static void SaveImages(ServerContext server, string kind, ImageJobResult result, List<byte[]> pngs)
    {
        var folder = Path.Combine(server.Options.OutputsDir, kind + "-images", DateTime.Now.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        Directory.CreateDirectory(folder);
        for (int i = 0; i < pngs.Count; i++)
            WriteAtomically(Path.Combine(folder, $"{DateTime.Now:HHmmssfff}-{result.Images[i].Seed}-{i}.png"), pngs[i]);
    }

    private static Dictionary<string, object?> Describe(ServerContext server, ServerJob job)
    {
        var p = job.Progress;
        return new()
        {
            ["id"] = job.Id,
            ["kind"] = job.Kind,
            ["state"] = Name(job.State),
            ["progress"] = job.Fraction,
            ["job_no"] = p?.BatchIndex ?? 0,
            ["job_count"] = p?.BatchCount ?? job.Job.Iterations,
            ["sampling_step"] = p?.Step ?? 0,
            ["sampling_steps"] = p?.Steps ?? job.Job.Steps,
            ["error"] = job.Error?.Message,
            ["images"] = job.State == JobState.Done && File.Exists(JobImagePath(server, job.Id, 0))
                ? Enumerable.Range(0, job.Pngs.Count).Select(i => $"/v2/jobs/{job.Id}/images/{i}").ToList() : new List<string>(),
            ["result"] = job.State == JobState.Done ? job.Response : null,
        };
    }

    /// <summary>Server-sent events: a "progress" event whenever the job's state or step changes, then one "done" event.</summary>
    private static IResult StreamAsync(ServerContext server, ServerJob job, HttpContext context) => Results.Stream(async stream =>
    {
        context.Response.ContentType = "text/event-stream";
        context.Response.Headers.CacheControl = "no-cache";
        var writer = new StreamWriter(stream) { AutoFlush = false };
        string? last = null;
        var cancel = context.RequestAborted;
        while (!cancel.IsCancellationRequested)
        {
            bool finished = job.Finished.IsCompleted;
            var description = Describe(server, job);
            if (!finished) description.Remove("result");
            var json = JsonSerializer.Serialize(description);
            if (finished || json != last)
            {
                await writer.WriteAsync($"event: {(finished ? "done" : "progress")}\ndata: {json}\n\n");
                await writer.FlushAsync(cancel);
                last = json;
            }
            if (finished) break;
            await Task.WhenAny(job.Finished, Task.Delay(200, cancel)).ConfigureAwait(false);
        }
    }, "text/event-stream");

    /// <summary>503 with Retry-After, so that clients wait instead of hammering a full queue.</summary>
    private sealed class QueueFull(int capacity) : IResult
    {
        public Task ExecuteAsync(HttpContext context)
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            context.Response.Headers.RetryAfter = "5";
            return context.Response.WriteAsJsonAsync(new { detail = $"the queue is full ({capacity} jobs waiting); try again later" });
        }
    }

    private static string Name(JobState state) => state.ToString().ToLowerInvariant();

    private static IResult NotFound(string id) => Results.Json(new { detail = $"no job {id}" }, statusCode: 404);

    /// <summary>Bad input found only when the job ran (an undecodable init image, a missing tokenizer) is a 422; the rest a 500.</summary>
    private static IResult Failure(Exception error) => IsBadInput(error)
        ? ServerContext.Unprocessable([new ValidationError(["body"], error.Message, "value_error")])
        : Results.Json(new { error = error is RemoteJobException remote ? remote.TypeName : error.GetType().Name, detail = "", body = "", errors = error.Message }, statusCode: 500);

    internal static bool IsBadInput(Exception error) =>
        error is ArgumentException or InvalidDataException or FileNotFoundException or RemoteJobException { BadInput: true };

    /// <summary>The request model's fields with A1111's API defaults (StableDiffusionProcessingTxt2Img/Img2Img).</summary>
    private static Dictionary<string, object?> Defaults(string kind)
    {
        var d = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["prompt"] = "", ["negative_prompt"] = "", ["styles"] = null, ["seed"] = -1, ["subseed"] = -1, ["subseed_strength"] = 0.0,
            ["seed_resize_from_h"] = -1, ["seed_resize_from_w"] = -1, ["sampler_name"] = null, ["scheduler"] = null, ["batch_size"] = 1,
            ["n_iter"] = 1, ["steps"] = 50, ["cfg_scale"] = 7.0, ["width"] = 512, ["height"] = 512, ["restore_faces"] = null,
            ["tiling"] = null, ["do_not_save_samples"] = false, ["do_not_save_grid"] = false, ["eta"] = null,
            ["denoising_strength"] = 0.75, ["s_min_uncond"] = null, ["s_churn"] = null, ["s_tmax"] = null,
            ["s_tmin"] = null, ["s_noise"] = null, ["override_settings"] = null, ["override_settings_restore_afterwards"] = true,
            ["refiner_checkpoint"] = null, ["refiner_switch_at"] = null, ["disable_extra_networks"] = false, ["firstpass_image"] = null,
            ["comments"] = null, ["force_task_id"] = null, ["sampler_index"] = "Euler", ["script_name"] = null,
            ["script_args"] = new List<object>(), ["send_images"] = true, ["save_images"] = false,
            ["alwayson_scripts"] = new Dictionary<string, object>(), ["infotext"] = null,
        };
        if (kind == "txt2img")
        {
            d["enable_hr"] = false; d["firstphase_width"] = 0; d["firstphase_height"] = 0; d["hr_scale"] = 2.0; d["hr_upscaler"] = null;
            d["hr_second_pass_steps"] = 0; d["hr_resize_x"] = 0; d["hr_resize_y"] = 0; d["hr_checkpoint_name"] = null;
            d["hr_sampler_name"] = null; d["hr_scheduler"] = null; d["hr_prompt"] = ""; d["hr_negative_prompt"] = "";
        }
        else
        {
            d["init_images"] = null; d["resize_mode"] = 0; d["image_cfg_scale"] = null; d["mask"] = null; d["mask_blur_x"] = 4;
            d["mask_blur_y"] = 4; d["mask_blur"] = null; d["mask_round"] = true; d["inpainting_fill"] = 0; d["inpaint_full_res"] = true;
            d["inpaint_full_res_padding"] = 0; d["inpainting_mask_invert"] = 0; d["initial_noise_multiplier"] = null;
            d["latent_mask"] = null; d["include_init_images"] = false;
        }
        return d;
    }
}
