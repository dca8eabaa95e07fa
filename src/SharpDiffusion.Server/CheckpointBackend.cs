using SharpDiffusion.Engine.ExtraNetworks;
using SharpDiffusion.Engine.Pipeline;
using SharpDiffusion.Engine.Random;
using SharpDiffusion.Engine.Sampling;
using SharpDiffusion.Png;

namespace SharpDiffusion.Server;

/// <summary>
/// Today's adapter from <see cref="IImageGenerationBackend"/> to the engine (one loaded checkpoint and its
/// <see cref="ExtraNetworkSession"/>, as <c>sharpdiffusion generate</c> runs a job). It builds the parameters text
/// exactly as the CLI does so that both give the same PNG. Meant to be replaced by the engine's generation service.
/// </summary>
public sealed class CheckpointBackend(ModelCatalog catalog, string? tokenizerPath) : IImageGenerationBackend, IDisposable
{
    private readonly SemaphoreSlim _modelLock = new(1, 1);
    private (string Path, string? Vae) _loadedKey;
    private StableDiffusionCheckpoint? _model;
    private ExtraNetworkSession? _session;

    public async Task<ImageJobResult> GenerateAsync(ImageJob job, IProgress<ImageJobProgress> progress, JobControl control)
    {
        await _modelLock.WaitAsync(control.Interrupted).ConfigureAwait(false);
        try
        {
            return await Task.Run(() => Run(job, progress, control)).ConfigureAwait(false);
        }
        finally
        {
            _modelLock.Release();
        }
    }

    public async Task<EmbeddingListing> ListEmbeddingsAsync(CheckpointEntry checkpoint, CancellationToken cancellationToken)
    {
        await _modelLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var session = await Task.Run(() => Load(checkpoint, _loadedKey.Path == checkpoint.FullPath ? _loadedKey.Vae : null), cancellationToken).ConfigureAwait(false);
            var db = session.Embeddings;
            if (db == null) return new EmbeddingListing([], []);
            static EmbeddingInfo Describe(string name, Engine.Embeddings.TextualInversionEmbedding e) =>
                new(name, e.Step, e.SdCheckpoint, e.SdCheckpointName, e.Widths.Count > 0 ? e.Widths[0] : 0, e.VectorCount);
            return new EmbeddingListing(
                db.Embeddings.Select(e => Describe(e.Key, e.Value)).ToList(),
                db.Skipped.Select(e => Describe(e.Key, e.Value)).ToList());
        }
        finally
        {
            _modelLock.Release();
        }
    }

    public void Unload()
    {
        _modelLock.Wait();
        try
        {
            DisposeModel();
        }
        finally
        {
            _modelLock.Release();
        }
    }

    public void Dispose() => Unload();

    private ImageJobResult Run(ImageJob job, IProgress<ImageJobProgress> progress, JobControl control)
    {
        var session = Load(job.Checkpoint, job.VaePath);
        var model = _model!;
        var (sampler, impliedSchedule) = SamplerRegistry.Resolve(job.SamplerName);
        ScheduleType? schedule = job.Scheduler.Equals("Automatic", StringComparison.OrdinalIgnoreCase) ? impliedSchedule : ScheduleTypes.Parse(job.Scheduler);
        byte[]? initRgb = job.InitImage == null ? null : DecodeInitImage(job.InitImage, job.Width, job.Height);
        var images = new List<GeneratedImage>();
        var warnings = new List<string>();
        for (int batch = 0; batch < job.Iterations && !control.IsInterrupted; batch++)
        {
            var request = new GenerationRequest
            {
                Prompt = job.Prompt,
                NegativePrompt = job.NegativePrompt,
                Steps = job.Steps,
                Sampler = job.SamplerName,
                Schedule = schedule,
                CfgScale = job.CfgScale,
                Seed = job.Seed + (long)batch * job.BatchSize,
                Rng = NoiseSources.Parse(job.Rng),
                Width = job.Width,
                Height = job.Height,
                BatchSize = job.BatchSize,
                ClipSkip = job.ClipSkip,
                InitImage = initRgb,
                Strength = job.DenoisingStrength,
            };
            int index = batch;
            progress.Report(new ImageJobProgress(index, job.Iterations, 0, job.Steps));
            ExtraNetworkJobResult generated;
            try
            {
                generated = session.Generate(request, step => progress.Report(Preview(step, model) with
                {
                    BatchIndex = index, BatchCount = job.Iterations, Step = step.Index + 1, Steps = step.Total,
                }), control.BeginBatch());
            }
            catch (OperationCanceledException)
            {
                if (control.IsInterrupted) break;
                continue; // skipped: on to the next batch
            }
            using (generated)
            {
                warnings.AddRange(generated.Warnings);
                var result = generated.Result;
                for (int i = 0; i < result.Images.Count; i++)
                {
                    // The same fields, in the same order, as GenerateCommand writes them.
                    var info = A1111Infotext.ForTxt2Img(request.Prompt, request.NegativePrompt, request.Steps, sampler.Name,
                        ScheduleName(request.Schedule ?? impliedSchedule), request.CfgScale, result.Seeds[i], request.Width, request.Height,
                        catalog.Hashes(model.Path).Short, Path.GetFileNameWithoutExtension(model.Path), request.ClipSkip);
                    if (model.VaePath != null)
                    {
                        info["VAE hash"] = catalog.Hashes(model.VaePath).Short;
                        info["VAE"] = Path.GetFileName(model.VaePath);
                    }
                    if (request.InitImage != null) info["Denoising strength"] = A1111Infotext.FormatNumber(request.Strength);
                    if (request.Rng == NoiseSourceKind.Nv) info["RNG"] = "NV";
                    foreach (var (key, value) in generated.InfotextFields) info[key] = value;
                    images.Add(new GeneratedImage(result.Images[i], result.Width, result.Height, result.Seeds[i], info.Format()));
                }
            }
        }
        return new ImageJobResult(images, warnings, control.IsInterrupted);
    }

    /// <summary>The first image's denoised prediction through A1111's cheap latent-to-RGB projection (4-channel latents only).</summary>
    private static ImageJobProgress Preview(SamplerStep step, StableDiffusionCheckpoint model)
    {
        var empty = new ImageJobProgress(0, 0, 0, 0);
        if (step.Denoised.shape is not [_, 4, var h, var w]) return empty;
        using var first = step.Denoised[0].to(TorchSharp.torch.ScalarType.Float32).cpu().contiguous();
        var rgb = LatentPreview.ToRgb(first.data<float>().ToArray(), (int)w, (int)h, model.Family == ModelFamily.Sdxl);
        return empty with { PreviewRgb = rgb, PreviewWidth = (int)w, PreviewHeight = (int)h };
    }

    private ExtraNetworkSession Load(CheckpointEntry checkpoint, string? vaePath)
    {
        if (_session != null && _loadedKey == (checkpoint.FullPath, vaePath)) return _session;
        DisposeModel();
        var model = StableDiffusionCheckpoint.Load(checkpoint.FullPath, new CheckpointLoadOptions
        {
            ConfigPath = checkpoint.ConfigPath,
            TokenizerPath = tokenizerPath,
            VaePath = vaePath,
        });
        try
        {
            _ = model.Tokenizer; // a missing vocabulary fails here, not halfway through a job
        }
        catch
        {
            model.Dispose();
            throw;
        }
        _model = model;
        _session = new ExtraNetworkSession(model, catalog.Folder);
        _loadedKey = (checkpoint.FullPath, vaePath);
        return _session;
    }

    private void DisposeModel()
    {
        _session?.Dispose();
        _model?.Dispose();
        _session = null;
        _model = null;
        _loadedKey = default;
    }

    private static byte[] DecodeInitImage(byte[] encoded, int width, int height)
    {
        var temp = Path.Combine(Path.GetTempPath(), "sdserve-init-" + Guid.NewGuid().ToString("N"));
        try
        {
            File.WriteAllBytes(temp, encoded);
            return InitImageLoader.LoadRgb(temp, width, height);
        }
        finally
        {
            File.Delete(temp);
        }
    }

    private static string ScheduleName(ScheduleType? schedule) => schedule switch
    {
        ScheduleType.Karras => "Karras",
        ScheduleType.Exponential => "Exponential",
        _ => "Automatic",
    };
}
