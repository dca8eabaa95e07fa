using SharpDiffusion.Architectures;
using SharpDiffusion.Inspection;

namespace SharpDiffusion.Conversion;

/// <summary>
/// Tensor names of a Stable Diffusion checkpoint in the single-file (LDM/sgm) layout and in the diffusers folder
/// layout, both ways, derived from the architecture (block counts, attention levels) rather than from a fixed list.
/// </summary>
public sealed class CheckpointKeyMap
{
    private CheckpointKeyMap(ModelArchitecture architecture, UnetLayout unet, int vaeLevels, VaeAttentionNames vaeNames)
    {
        Architecture = architecture;
        Unet = unet;
        VaeLevels = vaeLevels;
        VaeNames = vaeNames;
    }

    public ModelArchitecture Architecture { get; }
    public UnetLayout Unet { get; }
    public int VaeLevels { get; }

    /// <summary>Names produced for the VAE mid attention by <see cref="ToDiffusers"/> (<see cref="ToLdm"/> accepts both).</summary>
    public VaeAttentionNames VaeNames { get; }

    public static CheckpointKeyMap Create(ModelArchitecture architecture, UnetLayout unet, int vaeLevels = 4,
        VaeAttentionNames vaeNames = VaeAttentionNames.Modern)
    {
        if (vaeLevels < 1) throw new ArgumentOutOfRangeException(nameof(vaeLevels), vaeLevels, "a VAE has at least one level");
        return new CheckpointKeyMap(architecture, unet, vaeLevels, vaeNames);
    }

    /// <summary>Builds the map for the checkpoint whose single-file keys these are (architecture and layout inferred).</summary>
    public static CheckpointKeyMap FromLdmKeys(IEnumerable<string> keys, VaeAttentionNames vaeNames = VaeAttentionNames.Modern)
    {
        var list = keys as IReadOnlyCollection<string> ?? keys.ToList();
        // Without text encoders (a U-Net or VAE alone) the names are SD 1.x's.
        var architecture = ModelArchitectures.FamilyOfTextEncoderPrefixes(list) ?? ModelArchitectures.Sd1;
        var unetKeys = list.Where(k => k.StartsWith(LdmPrefixes.Unet, StringComparison.Ordinal)).ToList();
        // A file without a U-Net (VAE or text encoder alone) still maps its parts; assume the family's standard U-Net.
        var unet = unetKeys.Count > 0 ? UnetLayout.FromLdmKeys(unetKeys) : DefaultUnet(architecture);
        int vaeLevels = VaeKeyNames.LevelsFromLdmKeys(list);
        return new CheckpointKeyMap(architecture, unet, vaeLevels == 0 ? 4 : vaeLevels, vaeNames);
    }

    /// <summary>Builds the map from a diffusers folder's tensor names (<c>component/key</c>, as the folder reader exposes them).</summary>
    /// <param name="architecture">
    /// SD 2.x folders name their text encoder like SD 1.x (only the width differs), so pass SD2 when the text encoder
    /// config says so; by default a folder with <c>text_encoder_2</c> is SDXL and any other SD 1.x.
    /// </param>
    public static CheckpointKeyMap FromDiffusersKeys(IEnumerable<string> folderTensorNames, ModelArchitecture? architecture = null)
    {
        var list = folderTensorNames as IReadOnlyCollection<string> ?? folderTensorNames.ToList();
        const string unetPrefix = DiffusersComponents.Unet + "/";
        var unetKeys = list.Where(k => k.StartsWith(unetPrefix, StringComparison.Ordinal)).Select(k => k[unetPrefix.Length..]).ToList();
        var vaeNames = list.Any(k => k.StartsWith("vae/", StringComparison.Ordinal) && k.Contains(".attentions.0.query.", StringComparison.Ordinal))
            ? VaeAttentionNames.Legacy : VaeAttentionNames.Modern;
        bool hasSecond = list.Any(k => k.StartsWith(DiffusersComponents.TextEncoder2 + "/", StringComparison.Ordinal));
        int vaeLevels = VaeKeyNames.LevelsFromDiffusersKeys(list);
        var family = architecture ?? (hasSecond ? ModelArchitectures.Sdxl : ModelArchitectures.Sd1);
        var unet = unetKeys.Count > 0 ? UnetLayout.FromDiffusersKeys(unetKeys) : DefaultUnet(family);
        return new CheckpointKeyMap(family, unet, vaeLevels == 0 ? 4 : vaeLevels, vaeNames);
    }

    private static UnetLayout DefaultUnet(ModelArchitecture architecture) =>
        architecture.Family == BaseFamily.SDXL ? UnetLayout.Sdxl : UnetLayout.Sd1;

    /// <summary>The diffusers counterparts of a single-file key: usually one, three for a stacked q/k/v tensor, none if it has none.</summary>
    public IReadOnlyList<KeyCorrespondence> ToDiffusers(string ldmKey)
    {
        if (ldmKey.StartsWith(LdmPrefixes.Unet, StringComparison.Ordinal))
        {
            var key = UnetKeyNames.ToDiffusers(ldmKey[LdmPrefixes.Unet.Length..], Unet);
            return key == null ? [] : [new KeyCorrespondence(ldmKey, DiffusersComponents.Unet, key)];
        }
        if (ldmKey.StartsWith(LdmPrefixes.Vae, StringComparison.Ordinal))
        {
            var vae = VaeKeyNames.ToDiffusers(ldmKey[LdmPrefixes.Vae.Length..], VaeLevels, VaeNames);
            return vae is { } v ? [new KeyCorrespondence(ldmKey, DiffusersComponents.Vae, v.Key, v.Transform)] : [];
        }
        // Text encoders: the family's slot says where each lives and how its names are laid out.
        var slot = Architecture.TextEncoders.FirstOrDefault(e => ldmKey.StartsWith(e.Prefix, StringComparison.Ordinal));
        return slot?.Layout switch
        {
            TextEncoderLayout.HuggingFaceClip => HfClip(ldmKey, ldmKey[slot.Prefix.Length..], slot.Component),
            TextEncoderLayout.OpenClip => OpenClip(ldmKey, ldmKey[slot.Prefix.Length..], slot.Component, withProjection: slot.Pooled),
            _ => [],
        };
    }

    /// <summary>The single-file counterpart of a diffusers key in <paramref name="component"/>; null if it has none.</summary>
    public KeyCorrespondence? ToLdm(string component, string key)
    {
        switch (component)
        {
            case DiffusersComponents.Unet:
            {
                var ldm = UnetKeyNames.ToLdm(key, Unet);
                return ldm == null ? null : new KeyCorrespondence(LdmPrefixes.Unet + ldm, component, key);
            }
            case DiffusersComponents.Vae:
            {
                var ldm = VaeKeyNames.ToLdm(key, VaeLevels);
                return ldm is { } v ? new KeyCorrespondence(LdmPrefixes.Vae + v.Key, component, key, v.Transform) : null;
            }
            case var _ when Architecture.TextEncoder(component) is { } slot:
                if (slot.Layout == TextEncoderLayout.OpenClip) return FromOpenClip(slot.Prefix, component, key, withProjection: slot.Pooled);
                return slot.Layout == TextEncoderLayout.HuggingFaceClip && key.StartsWith("text_model.", StringComparison.Ordinal)
                    ? new KeyCorrespondence(slot.Prefix + key, component, key)
                    : null;
            default:
                return null;
        }
    }

    /// <summary>Maps every single-file key; keys with no diffusers counterpart (DDPM buffers, <c>logit_scale</c>...) are listed.</summary>
    public KeyMapping MapLdmKeys(IEnumerable<string> ldmKeys)
    {
        var found = new List<KeyCorrespondence>();
        var unmapped = new List<string>();
        foreach (var key in ldmKeys)
        {
            var parts = ToDiffusers(key);
            if (parts.Count == 0) unmapped.Add(key);
            else found.AddRange(parts);
        }
        return new KeyMapping(found, unmapped);
    }

    /// <summary>Maps every diffusers tensor name (<c>component/key</c>); names with no single-file counterpart are listed.</summary>
    public KeyMapping MapDiffusersKeys(IEnumerable<string> folderTensorNames)
    {
        var found = new List<KeyCorrespondence>();
        var unmapped = new List<string>();
        foreach (var name in folderTensorNames)
        {
            int slash = name.IndexOf('/');
            var c = slash > 0 ? ToLdm(name[..slash], name[(slash + 1)..]) : null;
            if (c == null) unmapped.Add(name);
            else found.Add(c);
        }
        return new KeyMapping(found, unmapped);
    }

    /// <summary>Current transformers names only: <see cref="CanonicalCheckpoint"/> renames the pre-4.x layout before keys get here.</summary>
    private static IReadOnlyList<KeyCorrespondence> HfClip(string ldmKey, string rest, string component) =>
        rest.StartsWith("text_model.", StringComparison.Ordinal) ? [new KeyCorrespondence(ldmKey, component, rest)] : [];

    private static IReadOnlyList<KeyCorrespondence> OpenClip(string ldmKey, string rest, string component, bool withProjection) =>
        [.. OpenClipKeyNames.ToHf(rest, withProjection).Select(c => new KeyCorrespondence(ldmKey, component, c.Key, c.Transform, c.SliceIndex, c.SliceCount))];

    private static KeyCorrespondence? FromOpenClip(string prefix, string component, string key, bool withProjection) =>
        OpenClipKeyNames.ToOpenClip(key, withProjection) is { } c
            ? new KeyCorrespondence(prefix + c.Key, component, key, c.Transform, c.SliceIndex, c.SliceCount)
            : null;
}
