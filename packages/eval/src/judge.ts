/**
 * A judge client for any OpenAI-compatible `/v1/chat/completions` endpoint: bounded
 * concurrency, a per-request timeout, retries with exponential backoff and full jitter on
 * 429 / 5xx / timeouts / network errors (honouring `Retry-After`), and a request budget.
 */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface JudgeOptions {
  /** e.g. `http://127.0.0.1:8000/v1` (the path `/chat/completions` is appended) */
  baseUrl: string;
  model: string;
  /** environment variable holding the API key (default OPENAI_API_KEY; none is fine locally) */
  apiKeyEnv?: string;
  temperature?: number;
  maxTokens?: number;
  /** requests in flight at most (default 4) */
  concurrency?: number;
  /** per request (default 60 s) */
  timeoutMs?: number;
  /** retries after the first attempt (default 5) */
  maxRetries?: number;
  /** backoff base and cap (default 500 ms, 8 s) */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** total HTTP requests this client may send (default unlimited) */
  requestBudget?: number;
  /** extra body fields, e.g. `{logprobs: true, top_logprobs: 5}` */
  extraBody?: Record<string, unknown>;
  /** for tests */
  fetchImpl?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export interface JudgeReply {
  content: string;
  /** `choices[0].logprobs.content[0].top_logprobs` when requested */
  topLogprobs?: { token: string; logprob: number }[];
}

export class BudgetExceededError extends Error {
  constructor(budget: number) {
    super(
      `judge request budget of ${budget} requests is spent; finished annotations are cached, rerun with a larger budget to continue`,
    );
    this.name = 'BudgetExceededError';
  }
}

export class JudgeClient {
  readonly stats = { requests: 0, retries: 0, failures: 0 };
  private active = 0;
  private readonly queue: (() => void)[] = [];
  private readonly o: Required<
    Omit<
      JudgeOptions,
      'apiKeyEnv' | 'requestBudget' | 'extraBody' | 'fetchImpl' | 'sleep' | 'random' | 'maxTokens'
    >
  > &
    Pick<JudgeOptions, 'requestBudget' | 'extraBody' | 'maxTokens'>;
  private readonly key?: string;
  private readonly fetchImpl: typeof fetch;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly random: () => number;

  constructor(o: JudgeOptions) {
    this.o = {
      baseUrl: o.baseUrl.replace(/\/+$/, ''),
      model: o.model,
      temperature: o.temperature ?? 0,
      maxTokens: o.maxTokens,
      concurrency: o.concurrency ?? 4,
      timeoutMs: o.timeoutMs ?? 60_000,
      maxRetries: o.maxRetries ?? 5,
      backoffMs: o.backoffMs ?? 500,
      maxBackoffMs: o.maxBackoffMs ?? 8_000,
      requestBudget: o.requestBudget,
      extraBody: o.extraBody,
    };
    this.key = process.env[o.apiKeyEnv ?? 'OPENAI_API_KEY'];
    this.fetchImpl = o.fetchImpl ?? fetch;
    this.sleep = o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
    this.random = o.random ?? Math.random;
  }

  /** The settings that change answers (part of every cache key). */
  get identity(): Record<string, unknown> {
    return {
      model: this.o.model,
      temperature: this.o.temperature,
      maxTokens: this.o.maxTokens ?? null,
      extraBody: this.o.extraBody ?? null,
    };
  }

  private async slot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.o.concurrency) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }

  /** One chat completion, retried on transient failures. */
  chat(messages: readonly ChatMessage[]): Promise<JudgeReply> {
    return this.slot(() => this.withRetries(messages));
  }

  private async withRetries(messages: readonly ChatMessage[]): Promise<JudgeReply> {
    let lastError = '';
    for (let attempt = 0; attempt <= this.o.maxRetries; attempt++) {
      if (this.o.requestBudget !== undefined && this.stats.requests >= this.o.requestBudget)
        throw new BudgetExceededError(this.o.requestBudget);
      if (attempt > 0) this.stats.retries++;
      this.stats.requests++;
      const ctrl = new AbortController();
      const timer = setTimeout(() => ctrl.abort(), this.o.timeoutMs);
      let retryAfterMs: number | undefined;
      try {
        const res = await this.fetchImpl(`${this.o.baseUrl}/chat/completions`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            ...(this.key ? { authorization: `Bearer ${this.key}` } : {}),
          },
          body: JSON.stringify({
            model: this.o.model,
            messages,
            temperature: this.o.temperature,
            ...(this.o.maxTokens !== undefined ? { max_tokens: this.o.maxTokens } : {}),
            ...this.o.extraBody,
          }),
          signal: ctrl.signal,
        });
        const text = await res.text();
        if (res.ok) {
          const body = JSON.parse(text) as {
            choices?: {
              message?: { content?: string };
              logprobs?: { content?: { top_logprobs?: { token: string; logprob: number }[] }[] };
            }[];
          };
          const choice = body.choices?.[0];
          if (typeof choice?.message?.content !== 'string')
            throw new Error(
              `judge response has no choices[0].message.content: ${text.slice(0, 200)}`,
            );
          const top = choice.logprobs?.content?.[0]?.top_logprobs;
          return { content: choice.message.content, ...(top ? { topLogprobs: top } : {}) };
        }
        lastError = `HTTP ${res.status}: ${text.slice(0, 200)}`;
        if (res.status !== 429 && res.status < 500) {
          this.stats.failures++;
          throw Object.assign(new Error(`judge request failed: ${lastError}`), { permanent: true });
        }
        const ra = Number(res.headers.get('retry-after'));
        if (Number.isFinite(ra) && ra > 0) retryAfterMs = ra * 1000;
      } catch (err) {
        if ((err as { permanent?: boolean }).permanent) throw err;
        lastError = ctrl.signal.aborted
          ? `timed out after ${this.o.timeoutMs} ms`
          : (err as Error).message;
      } finally {
        clearTimeout(timer);
      }
      if (attempt < this.o.maxRetries) {
        const cap = Math.min(this.o.maxBackoffMs, this.o.backoffMs * 2 ** attempt);
        await this.sleep(retryAfterMs ?? this.random() * cap);
      }
    }
    this.stats.failures++;
    throw new Error(`judge request failed after ${this.o.maxRetries + 1} attempts: ${lastError}`);
  }
}
