using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace SharpDiffusion.Server;

/// <summary>
/// HTTP Basic on every route (pages, OpenAPI and lists included) when <c>--api-auth</c> is given: 401 with
/// <c>WWW-Authenticate: Basic</c> otherwise. Credentials are compared in constant time. Without <c>--api-auth</c>
/// any Authorization header, an empty one included, is ignored (as A1111).
/// </summary>
internal static class BasicAuthentication
{
    public static Func<HttpContext, RequestDelegate, Task> Middleware(IReadOnlyList<(string User, string Password)> credentials)
    {
        var accepted = credentials.Select(c => Encoding.UTF8.GetBytes(c.User + ":" + c.Password)).ToArray();
        return async (context, next) =>
        {
            if (accepted.Length == 0 || IsAuthorized(context.Request.Headers.Authorization.ToString(), accepted))
            {
                await next(context);
                return;
            }
            context.Response.StatusCode = StatusCodes.Status401Unauthorized;
            context.Response.Headers.WWWAuthenticate = "Basic";
            await context.Response.WriteAsJsonAsync(new { detail = "Incorrect username or password" });
        };
    }

    private static bool IsAuthorized(string header, byte[][] accepted)
    {
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase)) return false;
        byte[] given;
        try
        {
            given = Convert.FromBase64String(header[6..].Trim());
        }
        catch (FormatException)
        {
            return false;
        }
        bool match = false;
        // Every entry is compared so that the time taken does not say which user name exists.
        foreach (var candidate in accepted) match |= CryptographicOperations.FixedTimeEquals(given, candidate);
        return match;
    }
}
